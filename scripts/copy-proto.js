// Copies the .proto files next to the compiled code so dist/ is self-contained.
const fs = require('node:fs');
const path = require('node:path');
const from = path.join(__dirname, '..', 'src', 'wire');
const to = path.join(__dirname, '..', 'dist', 'src', 'wire');
fs.mkdirSync(to, { recursive: true });
for (const f of fs.readdirSync(from)) if (f.endsWith('.proto')) fs.copyFileSync(path.join(from, f), path.join(to, f));
