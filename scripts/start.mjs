// `npm start`: runs the gateway (node --import tsx src/main.ts). On a terminal its JSON log lines are
// pretty-printed by pino-pretty (a development dependency); anywhere else — CI, containers, a pipe or
// a file — stdout stays JSON lines, one object per line. KURIR_LOG_FORMAT=json keeps JSON on a terminal too.
import { spawn } from 'node:child_process';

async function prettifier() {
  if (!process.stdout.isTTY || process.env.KURIR_LOG_FORMAT === 'json') return null;
  try {
    const { default: pretty } = await import('pino-pretty');
    return pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' });
  } catch {
    return null; // installed without development dependencies: plain JSON
  }
}

const pretty = await prettifier();
const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...process.argv.slice(2)], {
  stdio: ['inherit', pretty ? 'pipe' : 'inherit', 'inherit'],
});
if (pretty) child.stdout.pipe(pretty);
// Ctrl-C reaches the whole process group; a SIGTERM sent to this process alone is passed on. The
// gateway ignores a second signal while it is already shutting down.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  const done = () => process.exit(code ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : 15) : 1));
  if (pretty) pretty.end(done);
  else done();
});
