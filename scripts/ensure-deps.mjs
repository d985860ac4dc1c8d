// `npm start`, `npm run inbox`, `npm run kurir` on a fresh clone: install dependencies first if they are missing (pre* hooks).
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

if (!existsSync('node_modules/.package-lock.json')) {
  console.error('kurir: installing dependencies (npm ci)…');
  execSync('npm ci --no-audit --no-fund', { stdio: 'inherit' });
}
