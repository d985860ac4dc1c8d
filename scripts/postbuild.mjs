// `npm run build` (postbuild): make the package's bin entries executable. tsc keeps their shebang line but
// writes files without the execute bit, so `dist/src/cli/bin.js` could only be run as `node dist/src/cli/bin.js`.
import { chmodSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const bins = typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {});
for (const file of bins) chmodSync(file, 0o755);
