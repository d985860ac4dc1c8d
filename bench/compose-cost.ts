/**
 * CPU per composed JSON submission: composePlain (src/intake/compose-plain.ts) against nodemailer's MailComposer,
 * which it replaces for the usual message, on the benchmark's own message (4 KB of text, bench/load.ts) and on a
 * Slovenian verification message (quoted-printable). Rounds alternate between the two; each prints the CPU time
 * (user + system) per message and the figures' spread. `npx tsx bench/compose-cost.ts` (BENCH_COMPOSE_N messages
 * per round, default 5000).
 */
import { buildWithMailComposer as mailComposer } from '../src/intake/compose.js';
import { composePlain, type PlainParts } from '../src/intake/compose-plain.js';
import { paddedText } from './load.js';

const N = Number(process.env.BENCH_COMPOSE_N ?? 5000);
const ROUNDS = 5;

const MESSAGES: Record<string, (i: number) => PlainParts> = {
  'bench message (4 KB ASCII text)': (i) => base(i, { from: 'Bench <noreply@example.test>', subject: `Benchmark ${i}`, text: paddedText(i) }),
  'Slovenian verification (text + HTML, quoted-printable)': (i) =>
    base(i, {
      from: 'Upravna enota Ljubljana <noreply@example.test>',
      subject: `Vaša koda za potrditev termina: ${100000 + i}`,
      text: `Spoštovani,\n\nvaša koda za potrditev termina je ${100000 + i}. Koda velja 30 minut.\n\nLep pozdrav,\nUpravna enota`,
      html: `<p>Spoštovani,</p><p>vaša koda za potrditev termina je <b>${100000 + i}</b>. Koda velja 30 minut.</p>`,
    }),
};

function base(i: number, o: Partial<PlainParts>): PlainParts {
  const token = `${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
  return { from: '', to: [`user${i}@dest.test`], cc: [], messageId: `<${token}@example.test>`, boundary: token.replaceAll('-', ''), date: new Date(), ...o };
}

/** CPU microseconds per message for composing N messages one way. */
async function cpuPerMessage(make: (i: number) => PlainParts, how: 'plain' | 'mailcomposer'): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const p = make(i);
    if (how === 'plain') {
      if (!composePlain(p)) throw new Error('composePlain declined the message');
    } else await mailComposer(p);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / N;
}

for (const [label, make] of Object.entries(MESSAGES)) {
  const plain = await mailComposer(make(1));
  if (!composePlain(make(1))?.equals(plain)) throw new Error(`${label}: the two ways differ`);
  const results: Record<'plain' | 'mailcomposer', number[]> = { plain: [], mailcomposer: [] };
  await cpuPerMessage(make, 'plain'); // warm-up of both
  await cpuPerMessage(make, 'mailcomposer');
  for (let r = 0; r < ROUNDS; r++) {
    for (const how of r % 2 ? (['mailcomposer', 'plain'] as const) : (['plain', 'mailcomposer'] as const)) results[how].push(await cpuPerMessage(make, how));
  }
  const show = (xs: number[]): string =>
    `${[...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(1)} µs (${xs.map((x) => x.toFixed(1)).join(', ')})`;
  console.log(`${label}, ${N} messages per round, median CPU per message:`);
  console.log(`  MailComposer ${show(results.mailcomposer)}`);
  console.log(`  composePlain ${show(results.plain)}`);
}
