/**
 * `npm run bench:upload`: what the upload saga costs. 100 kB Markdown files uploaded through HTTP
 * (`POST /api/documents/upload`, multipart) to the built reference server, with
 * `priority_2_1_saga_pattern` on (the `document_upload` saga: its log writes around Drive, the
 * document row and the index) and off (the same three steps, directly), one at a time and 8 at
 * once, on embedded PGlite and on PostgreSQL: uploads/s, p50/p99 latency, and saga vs direct
 * throughput, the two paths measured in alternating batches. One run (each upload indexes ~100 kB of text, so a run takes minutes).
 *
 * Environment: AIKB_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; a
 * fresh database is created for the run and dropped after). Build the server first (`npm run build`).
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { seededRandom } from '@aikb/test-support';
import { benchDatabase, percentile, printTable, startBuiltServer, type BenchServer } from './support';

const UPLOADS = { 1: 40, 8: 120 } as const;
const WARM_UP = 8;
/** Batches per path, alternating saga and direct. */
const ROUNDS = 4;
const FILE_BYTES = 100 * 1024;
const ADMIN_TOKEN = 'bench-admin-token-upload-0123456789';
const databaseUrl = process.env.AIKB_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** ~100 kB of Markdown from a fixed vocabulary: paragraphs under headings, different for each seed. */
function markdown(seed: number): string {
  const random = seededRandom(seed);
  const words = [
    'pool',
    'saga',
    'drive',
    'index',
    'vector',
    'runbook',
    'latency',
    'widget',
    'sprocket',
    'quarter',
    'deploy',
    'rollback',
    'tenant',
    'chunk',
    'embed',
  ];
  let text = `# Report ${seed}\n\n`;
  while (text.length < FILE_BYTES) {
    if (random() < 0.05) text += `\n## Section ${text.length}\n\n`;
    const sentence = Array.from({ length: 8 + Math.floor(random() * 10) }, () => words[Math.floor(random() * words.length)]!).join(' ');
    text += `${sentence[0]!.toUpperCase()}${sentence.slice(1)}. `;
    if (random() < 0.1) text += '\n\n';
  }
  return text.slice(0, FILE_BYTES);
}

type Server = BenchServer;

/** The built reference server, embedded or on `DATABASE_URL`. */
const startServer = (url: string | undefined) => startBuiltServer({ adminToken: ADMIN_TOKEN, env: url ? { DATABASE_URL: url } : {} });

async function call(server: Server, method: string, pathname: string, token: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${pathname}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** A user made through the admin API, logged in (one login: each takes 500 ms by design). */
async function userToken(server: Server): Promise<string> {
  const email = `bench-${randomBytes(4).toString('hex')}@example.com`;
  await call(server, 'POST', '/api/admin/users', ADMIN_TOKEN, { email, password: 'bench-password-123', roles: ['user'] });
  const res = await fetch(`${server.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: 'bench-password-123' }),
  });
  return ((await res.json()) as { token: string }).token;
}

/** One upload as `curl -F title=… -F file=@report.md` sends it; resolves with its time. */
async function upload(server: Server, token: string, file: string, n: number): Promise<number> {
  const form = new FormData();
  form.append('title', `Report ${n}`);
  form.append('file', new Blob([file], { type: 'text/markdown' }), `report-${n}.md`);
  const started = performance.now();
  const res = await fetch(`${server.url}/api/documents/upload`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`upload ${n}: HTTP ${res.status}`);
  return performance.now() - started;
}

interface Result {
  perSecond: number;
  p50: number;
  p99: number;
}

type Path = 'saga' | 'direct';

/**
 * `total` uploads per path, `concurrency` at a time, in `ROUNDS` batches that alternate the paths
 * (the flag switched between batches), so load from other jobs hits both sides alike.
 */
async function measure(server: Server, token: string, files: string[], concurrency: number, total: number): Promise<Record<Path, Result>> {
  let offset = 0;
  const batch = async (n: number) => {
    const times: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = offset + next++;
          times.push(await upload(server, token, files[i % files.length]!, i));
        }
      }),
    );
    offset += n;
    return times;
  };
  const setPath = (path: Path) =>
    call(server, 'POST', '/api/admin/feature-flags/priority_2_1_saga_pattern', ADMIN_TOKEN, { enabled: true, rolloutPercentage: path === 'saga' ? 100 : 0 });
  const spent: Record<Path, { ms: number; times: number[] }> = { saga: { ms: 0, times: [] }, direct: { ms: 0, times: [] } };
  for (const path of ['saga', 'direct'] as const) {
    await setPath(path);
    await batch(WARM_UP);
  }
  const perRound = Math.ceil(total / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    for (const path of round % 2 === 0 ? (['saga', 'direct'] as const) : (['direct', 'saga'] as const)) {
      await setPath(path);
      const started = performance.now();
      spent[path].times.push(...(await batch(perRound)));
      spent[path].ms += performance.now() - started;
    }
  }
  const result = (path: Path): Result => ({
    perSecond: spent[path].times.length / (spent[path].ms / 1000),
    p50: percentile(spent[path].times, 50),
    p99: percentile(spent[path].times, 99),
  });
  return { saga: result('saga'), direct: result('direct') };
}

async function main(): Promise<void> {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `aikb bench:upload — ${os.cpus().length} × ${cpu}, Node.js ${process.version}, ${FILE_BYTES / 1024} kB Markdown files through HTTP, one run (${UPLOADS[1]} uploads per path at 1, ${UPLOADS[8]} at 8 concurrent, in ${ROUNDS} alternating batches, after ${WARM_UP} warm-up each)`,
  );
  const files = Array.from({ length: 16 }, (_, i) => markdown(i + 1));
  const database = await benchDatabase(databaseUrl);
  const rows: string[][] = [['database', 'concurrent', 'path', 'uploads/s', 'p50', 'p99', 'saga vs direct']];
  try {
    const backends: Array<{ label: string; url: string | undefined }> = [{ label: 'PGlite (embedded)', url: undefined }];
    if (database) backends.push({ label: 'PostgreSQL (loopback)', url: database.url });
    for (const backend of backends) {
      const server = await startServer(backend.url);
      try {
        const token = await userToken(server);
        for (const concurrency of [1, 8] as const) {
          const results = await measure(server, token, files, concurrency, UPLOADS[concurrency]);
          const ratio = results.saga.perSecond / results.direct.perSecond;
          for (const path of ['saga', 'direct'] as const) {
            const r = results[path];
            rows.push([
              backend.label,
              String(concurrency),
              path === 'saga' ? 'saga (flag on)' : 'direct (flag off)',
              r.perSecond.toFixed(1),
              `${r.p50.toFixed(0)} ms`,
              `${r.p99.toFixed(0)} ms`,
              path === 'saga' ? `${(ratio * 100).toFixed(0)} % (costs ${((1 - ratio) * 100).toFixed(0)} %)` : '—',
            ]);
          }
        }
      } finally {
        await server.stop();
      }
    }
  } finally {
    await database?.drop();
  }
  printTable(rows);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
