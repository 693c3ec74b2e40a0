// A node:test reporter that writes one JSON line per top-level test: its file and duration (ms).
// scripts/run-tests.js adds it beside the spec reporter and prints the slowest files at the end, so a CI log shows
// where the suite's wall time goes.
module.exports = async function* fileTimes(source) {
  for await (const ev of source) {
    if ((ev.type === 'test:pass' || ev.type === 'test:fail') && ev.data.nesting === 0 && ev.data.file) {
      yield `${JSON.stringify({ file: ev.data.file, ms: ev.data.details?.duration_ms ?? 0 })}\n`;
    }
  }
};
