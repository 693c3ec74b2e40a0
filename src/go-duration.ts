/** Go's time.Duration text, shared by the bench reports and etcd-shaped log fields (e.g. `compact-period`). */

/** Go's time.Duration.String() for `ns` nanoseconds, e.g. "512µs", "1.234567ms", "2.5s", "0s". */
export function goDuration(ns: number): string {
  ns = Math.round(ns);
  if (ns === 0) return '0s';
  const neg = ns < 0;
  const a = Math.abs(ns);
  const trim = (v: number, digits: number): string => v.toFixed(digits).replace(/\.?0+$/, '');
  let s: string;
  if (a < 1e3) s = `${a}ns`;
  else if (a < 1e6) s = `${trim(a / 1e3, 3)}µs`;
  else if (a < 1e9) s = `${trim(a / 1e6, 6)}ms`;
  else {
    let rest = a / 1e9;
    const h = Math.floor(rest / 3600);
    rest -= h * 3600;
    const m = Math.floor(rest / 60);
    rest -= m * 60;
    s = `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trim(rest, 9)}s`;
  }
  return neg ? `-${s}` : s;
}
