import { Option, type Command } from 'commander';
import { CliFailure, request, segment } from './http';
import { record, show, table, type Column, type Output } from './output';
import { integer, readPassword, share, type Context } from './shared';

/** What `featureFlagsRouter` records as the actor of a rollback's changes: `rollback:<who>` (`ROLLBACK_ACTOR_PREFIX` in @aikb/express). */
const ROLLBACK_ACTOR_PREFIX = 'rollback:';

interface FlagView {
  name: string;
  enabled: boolean;
  rolloutPercentage: number;
  description: string;
  lastUpdated: string;
  version: number;
  cacheAge?: { secondsSinceUpdate: number; stale: boolean } | null;
}

interface FlagChangeView {
  version: number;
  before?: { enabled: boolean; rolloutPercentage: number; description: string };
  after: { enabled: boolean; rolloutPercentage: number; description: string };
  actor: string;
  at: string;
}

const FLAG = '/api/admin/feature-flags';

const cacheAgeColumn: Column<FlagView> = [
  'cache age s',
  (f) => (f.cacheAge ? `${f.cacheAge.secondsSinceUpdate}${f.cacheAge.stale ? ' (stale)' : ''}` : 'not cached'),
];

function flagCommands(program: Command, context: (cmd: Command) => Context): void {
  const flags = program.command('flags').description('feature flags: list, read, change, roll out, audit history');

  flags
    .command('list')
    .description('every flag (GET /api/admin/feature-flags)')
    .option('--cache-info', "with this instance's cache age per flag and the TTL (?include=cache-info)")
    .action(async (options: { cacheInfo?: boolean }, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: FLAG, as: 'admin', query: { include: options.cacheInfo ? 'cache-info' : undefined } });
      const answer = body as { flags: FlagView[]; cacheAge?: { secondsSinceUpdate: number; ttl: number } };
      show(out, body, () => {
        table(out, answer.flags, [
          ['flag', (f) => f.name],
          ['enabled', (f) => f.enabled],
          ['rollout %', (f) => f.rolloutPercentage],
          ['version', (f) => f.version],
          ['last updated', (f) => f.lastUpdated],
          ...(options.cacheInfo ? [cacheAgeColumn] : []),
        ]);
        if (answer.cacheAge) out.note(`cache: oldest entry ${answer.cacheAge.secondsSinceUpdate} s old, TTL ${answer.cacheAge.ttl} s`);
      });
    });

  flags
    .command('get')
    .description('one flag (GET /api/admin/feature-flags/<name>)')
    .argument('<name>')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: `${FLAG}/${segment(name)}`, as: 'admin' });
      show(out, body, () => record(out, body));
    });

  flags
    .command('status')
    .description('what this instance serves for a user, from its cache (GET …/<name>/status?userId=)')
    .argument('<name>')
    .option('--user <id>', 'the user whose bucket decides')
    .action(async (name: string, options: { user?: string }, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: `${FLAG}/${segment(name)}/status`, as: 'admin', query: { userId: options.user } });
      show(out, body, () => record(out, body));
    });

  flags
    .command('set')
    .description('change a flag (POST /api/admin/feature-flags/<name>)')
    .argument('<name>')
    .addOption(new Option('--enable', 'enable it').conflicts('disable'))
    .addOption(new Option('--disable', 'disable it'))
    .option('--rollout <percent>', 'rollout percentage, 0 to 100', integer(0, 100))
    .option('--description <text>', 'its description')
    .action(async (name: string, options: { enable?: boolean; disable?: boolean; rollout?: number; description?: string }, cmd: Command) => {
      const patch = {
        ...(options.enable ? { enabled: true } : options.disable ? { enabled: false } : {}),
        ...(options.rollout !== undefined ? { rolloutPercentage: options.rollout } : {}),
        ...(options.description !== undefined ? { description: options.description } : {}),
      };
      if (Object.keys(patch).length === 0) throw new CliFailure('flags set: give at least one of --enable, --disable, --rollout, --description', 2);
      await writeFlag(context(cmd), name, patch);
    });

  flags
    .command('rollout')
    .description('set the rollout percentage (POST …/<name> {"rolloutPercentage": n})')
    .argument('<name>')
    .argument('<percent>', 'rollout percentage, 0 to 100', integer(0, 100))
    .action(async (name: string, percent: number, _options: unknown, cmd: Command) => {
      await writeFlag(context(cmd), name, { rolloutPercentage: percent });
    });

  flags
    .command('history')
    .description('who changed the flag, from what to what, newest first (GET …/<name>/history)')
    .argument('<name>')
    .option('--limit <n>', 'at most this many changes', integer(1, 1000))
    .action(async (name: string, options: { limit?: number }, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: `${FLAG}/${segment(name)}/history`, as: 'admin', query: { limit: options.limit } });
      const state = (s: FlagChangeView['after'] | undefined) => (s ? `${s.enabled ? 'on' : 'off'} ${s.rolloutPercentage}%` : '(created)');
      show(out, body, () =>
        table(out, (body as { history: FlagChangeView[] }).history, [
          ['version', (c) => c.version],
          ['at', (c) => c.at],
          ['actor', (c) => c.actor],
          ['before', (c) => state(c.before)],
          ['after', (c) => state(c.after)],
        ]),
      );
    });
}

async function writeFlag({ target, out }: Context, name: string, patch: Record<string, unknown>): Promise<void> {
  const { body } = await request(target, { method: 'POST', path: `${FLAG}/${segment(name)}`, as: 'admin', json: patch });
  const flag = body as FlagView & { propagation?: { status: string; convergesWithinSeconds?: number } };
  show(out, body, () => {
    out.line(`${flag.name}: ${flag.enabled ? 'enabled' : 'disabled'}, rollout ${flag.rolloutPercentage}% (version ${flag.version})`);
    if (flag.propagation && flag.propagation.status !== 'ok')
      out.note(`propagation ${flag.propagation.status}: other instances converge within ${flag.propagation.convergesWithinSeconds ?? '?'} s`);
  });
}

interface RolledBack {
  name: string;
  previousRolloutPercentage: number | null;
  rolloutPercentage: number;
}

/**
 * `aikb rollback --undo`: for each flag whose latest change is a rollback, restores the rollout it
 * had before; a flag changed since its rollback is left as it is (and named).
 */
async function undoRollback({ target, out }: Context): Promise<void> {
  const { body } = await request(target, { method: 'GET', path: FLAG, as: 'admin' });
  const restored: Array<{ name: string; rolloutPercentage: number; rolledBackBy: string; rolledBackAt: string }> = [];
  const skipped: Array<{ name: string; reason: string }> = [];
  for (const flag of (body as { flags: FlagView[] }).flags) {
    const history = (await request(target, { method: 'GET', path: `${FLAG}/${segment(flag.name)}/history`, as: 'admin', query: { limit: 20 } })).body as {
      history: FlagChangeView[];
    };
    const rollback = history.history.findIndex((change) => change.actor.startsWith(ROLLBACK_ACTOR_PREFIX));
    if (rollback < 0) continue; // never rolled back (in its recent history): nothing to undo
    const change = history.history[rollback]!;
    if (rollback > 0) {
      const latest = history.history[0]!;
      // Restored already (by an earlier undo, or by hand): nothing to say.
      if (latest.after.rolloutPercentage === change.before?.rolloutPercentage) continue;
      skipped.push({ name: flag.name, reason: `changed since the rollback (by ${latest.actor} at ${latest.at})` });
      continue;
    }
    const previous = change.before?.rolloutPercentage;
    if (previous === undefined) continue;
    await request(target, { method: 'POST', path: `${FLAG}/${segment(flag.name)}`, as: 'admin', json: { rolloutPercentage: previous } });
    restored.push({ name: flag.name, rolloutPercentage: previous, rolledBackBy: change.actor.slice(ROLLBACK_ACTOR_PREFIX.length), rolledBackAt: change.at });
  }
  show(out, { restored, skipped }, () => {
    table(
      out,
      restored,
      [
        ['flag', (r) => r.name],
        ['restored rollout %', (r) => r.rolloutPercentage],
        ['rolled back by', (r) => r.rolledBackBy],
        ['rolled back at', (r) => r.rolledBackAt],
      ],
      'nothing to undo: no flag has a rollback as its latest change',
    );
  });
  for (const skip of skipped) out.note(`left ${skip.name} as it is: ${skip.reason}`);
}

function rollbackCommand(program: Command, context: (cmd: Command) => Context): void {
  program
    .command('rollback')
    .description("the runbook's emergency rollback: every gated flag (priority_*) to rollout 0 in one call (POST /api/admin/feature-flags/_rollback)")
    .option('--undo', 'restore the rollouts the last rollback changed, from the flags’ audit history')
    .action(async (options: { undo?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      if (options.undo) return undoRollback(ctx);
      const { target, out } = ctx;
      const { body } = await request(target, { method: 'POST', path: `${FLAG}/_rollback`, as: 'admin' });
      const answer = body as { pattern: string; rolledBack: RolledBack[] };
      show(out, body, () =>
        table(
          out,
          answer.rolledBack,
          [
            ['flag', (f) => f.name],
            ['previous rollout %', (f) => f.previousRolloutPercentage],
            ['rollout %', (f) => f.rolloutPercentage],
          ],
          `nothing to roll back: every ${answer.pattern} flag is at rollout 0`,
        ),
      );
    });
}

function cacheCommands(program: Command, context: (cmd: Command) => Context): void {
  program
    .command('cache')
    .description('caches')
    .command('invalidate')
    .description('drop cache keys on every instance, e.g. feature_flags:priority_3_X or feature_flags:* (POST /api/admin/cache/invalidate)')
    .argument('<keys...>', 'cache keys or globs')
    .action(async (keys: string[], _options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'POST', path: '/api/admin/cache/invalidate', as: 'admin', json: { keys } });
      show(out, body, () => record(out, body));
    });
}

interface Component {
  status: string;
  message?: string;
  latencyMs?: number;
  [key: string]: unknown;
}

function observabilityCommands(program: Command, context: (cmd: Command) => Context): void {
  program
    .command('health')
    .description('the health check, component by component (GET /api/health); exit 1 when the server says it is not ok')
    .action(async (_options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      const { status, body } = await request(target, { method: 'GET', path: '/api/health', as: 'anonymous', accept: [503] });
      const health = body as { status: string; uptimeSeconds: number; version?: string; components: Record<string, Component> };
      show(out, body, () => {
        out.line(`status: ${health.status} (version ${health.version ?? '?'}, up ${health.uptimeSeconds} s)`);
        table(out, Object.entries(health.components ?? {}), [
          ['component', ([name]) => name],
          ['status', ([, c]) => c.status],
          ['latency ms', ([, c]) => c.latencyMs],
          ['message', ([, c]) => c.message],
        ]);
      });
      if (status !== 200) throw new CliFailure(`the server reports ${health.status} (HTTP ${status})`, 1);
    });

  program
    .command('status')
    .description('every subsystem as the server sees it: pool, tracing, redis, flags, auth, sagas, ... (GET /api/admin/system/status)')
    .action(async (_options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: '/api/admin/system/status', as: 'admin' });
      show(out, body, () => record(out, body));
    });

  program
    .command('pool')
    .description('database connection pool (GET /api/health/pool-stats)')
    .action(async (_options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: '/api/health/pool-stats', as: 'anonymous' });
      show(out, body, () => record(out, body));
    });

  program
    .command('traces')
    .description('recent requests, newest first, by connections used (GET /api/admin/traces)')
    .option('--min-connections <n>', 'only requests that held at least n connections', integer(0, 10_000))
    .option('--limit <n>', 'at most n requests', integer(1, 1000), 20)
    .action(async (options: { minConnections?: number; limit: number }, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, {
        method: 'GET',
        path: '/api/admin/traces',
        as: 'admin',
        query: { minConnections: options.minConnections, limit: options.limit },
      });
      type Span = { spanName: string; connectionsUsed: number; longestHoldMs: number; durationMs: number; status: string; traceId: string; startTime: string };
      show(out, body, () =>
        table(out, body as Span[], [
          ['endpoint', (s) => s.spanName],
          ['connections', (s) => s.connectionsUsed],
          ['longest hold ms', (s) => s.longestHoldMs],
          ['duration ms', (s) => s.durationMs],
          ['status', (s) => s.status],
          ['trace id', (s) => s.traceId],
          ['started', (s) => s.startTime],
        ]),
      );
    });

  program
    .command('errors')
    .description('server errors by endpoint over a window (GET /api/admin/metrics/errors)')
    .addOption(new Option('--window <window>', 'the window').choices(['5m', '1h', '24h']).default('1h'))
    .action(async (options: { window: string }, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: '/api/admin/metrics/errors', as: 'admin', query: { window: options.window } });
      type Row = { endpoint: string; errorCount: number; errorRate: number; topErrors?: Array<{ type: string; count: number; message: string }> };
      show(out, body, () =>
        table(
          out,
          (body as { errors: Row[] }).errors,
          [
            ['endpoint', (r) => r.endpoint],
            ['errors', (r) => r.errorCount],
            ['error rate', (r) => r.errorRate],
            ['top error', (r) => (r.topErrors?.[0] ? `${r.topErrors[0].type} ×${r.topErrors[0].count}: ${r.topErrors[0].message}` : '')],
          ],
          `no server errors in the last ${options.window}`,
        ),
      );
    });
}

interface SagaView {
  id: string;
  name: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  parkReason: string | null;
  error: { type: string; message: string; step?: string } | null;
  steps?: Array<{ index: number; name: string; phase: string; status: string; attempts: number; durationMs: number | null; error: { message: string } | null }>;
}

function sagaCommands(program: Command, context: (cmd: Command) => Context): void {
  const sagas = program.command('sagas').description('document-upload sagas: list, inspect, retry, resolve');
  const SAGAS = '/api/admin/sagas';

  sagas
    .command('list')
    .description('sagas, newest first (GET /api/admin/sagas)')
    .option('--state <states>', 'comma-separated states, e.g. failed,parked')
    .option('--name <name>', 'only sagas of this name')
    .addOption(new Option('--resolved <yes-or-no>', 'only sagas resolved by hand (true) or not (false)').choices(['true', 'false']))
    .option('--limit <n>', 'at most n sagas', integer(1, 500))
    .option('--after <cursor>', 'the next page, from a previous answer')
    .action(async (options: { state?: string; name?: string; resolved?: string; limit?: number; after?: string }, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: SAGAS, as: 'admin', query: { ...options } });
      const page = body as { sagas: SagaView[]; next?: string };
      show(out, body, () => {
        table(out, page.sagas, [
          ['id', (s) => s.id],
          ['name', (s) => s.name],
          ['state', (s) => s.state],
          ['created', (s) => s.createdAt],
          ['updated', (s) => s.updatedAt],
          ['problem', (s) => s.parkReason ?? s.error?.message],
        ]);
        if (page.next) out.note(`more: --after ${page.next}`);
      });
    });

  const one = (name: string, description: string, run: (ctx: Context, id: string, options: Record<string, unknown>) => Promise<void>) =>
    sagas
      .command(name)
      .description(description)
      .argument('<id>', 'the saga id')
      .action(async (id: string, options: Record<string, unknown>, cmd: Command) => run(context(cmd), id, options));

  const showSaga = (out: Output, body: unknown) =>
    show(out, body, () => {
      const { steps, ...saga } = body as SagaView;
      record(out, saga);
      if (steps)
        table(out, steps, [
          ['#', (s) => s.index],
          ['step', (s) => s.name],
          ['phase', (s) => s.phase],
          ['status', (s) => s.status],
          ['attempts', (s) => s.attempts],
          ['duration ms', (s) => s.durationMs],
          ['error', (s) => s.error?.message],
        ]);
    });

  one('show', 'one saga with its steps (GET /api/admin/sagas/<id>)', async ({ target, out }, id) => {
    showSaga(out, (await request(target, { method: 'GET', path: `${SAGAS}/${segment(id)}`, as: 'admin' })).body);
  });
  one('retry', 'run a failed or parked saga again now (POST …/<id>/retry)', async ({ target, out }, id) => {
    const { body } = await request(target, { method: 'POST', path: `${SAGAS}/${segment(id)}/retry`, as: 'admin' });
    show(out, body, () => record(out, body));
  });
  one('cancel', 'ask a running saga to stop and compensate (POST …/<id>/cancel)', async ({ target, out }, id) => {
    showSaga(out, (await request(target, { method: 'POST', path: `${SAGAS}/${segment(id)}/cancel`, as: 'admin' })).body);
  });
  one('resolve', 'mark a parked saga as fixed by hand (POST …/<id>/resolve)', async ({ target, out }, id, options) => {
    const note = options.note as string | undefined;
    const { body } = await request(target, { method: 'POST', path: `${SAGAS}/${segment(id)}/resolve`, as: 'admin', json: note === undefined ? {} : { note } });
    showSaga(out, body);
  }).option('--note <text>', 'what was done (kept with the saga)');
}

interface UserView {
  id: string;
  email: string;
  roles: string[];
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
}

const USERS = '/api/admin/users';

/** A user id, or an email looked up in the user list. */
async function userId({ target }: Context, idOrEmail: string): Promise<string> {
  if (!idOrEmail.includes('@')) return idOrEmail;
  const { body } = await request(target, { method: 'GET', path: USERS, as: 'admin' });
  const user = (body as { users: UserView[] }).users.find((u) => u.email.toLowerCase() === idOrEmail.toLowerCase());
  if (!user) throw new CliFailure(`not found: no user with the email ${idOrEmail}`, 1);
  return user.id;
}

function userCommands(program: Command, context: (cmd: Command) => Context): void {
  const users = program.command('users').description('user accounts, through the admin API (/api/admin/users); offline bootstrap: aikb-server users add');
  const showUser = (out: Output, body: unknown) => show(out, body, () => record(out, body));
  const patch = async (cmd: Command, idOrEmail: string, body: Record<string, unknown>) => {
    const ctx = context(cmd);
    const id = await userId(ctx, idOrEmail);
    showUser(ctx.out, (await request(ctx.target, { method: 'PATCH', path: `${USERS}/${segment(id)}`, as: 'admin', json: body })).body);
  };

  users
    .command('list')
    .description('every user (GET /api/admin/users)')
    .action(async (_options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: USERS, as: 'admin' });
      show(out, body, () =>
        table(out, (body as { users: UserView[] }).users, [
          ['id', (u) => u.id],
          ['email', (u) => u.email],
          ['roles', (u) => u.roles.join(', ')],
          ['disabled', (u) => u.disabled],
          ['created', (u) => u.createdAt],
        ]),
      );
    });

  users
    .command('add')
    .description('add a user (POST /api/admin/users); the password is prompted for, or read from stdin')
    .requiredOption('--email <email>', 'their email')
    .option('--role <role>', 'a role (repeat for more)', (role: string, roles: string[] = []) => [...roles, role])
    .option('--password-stdin', 'read the password from stdin')
    .action(async (options: { email: string; role?: string[]; passwordStdin?: boolean }, cmd: Command) => {
      const { target, out } = context(cmd);
      const password = await readPassword(options.passwordStdin, `password for ${options.email}: `);
      const { body } = await request(target, { method: 'POST', path: USERS, as: 'admin', json: { email: options.email, password, roles: options.role ?? [] } });
      showUser(out, body);
    });

  users
    .command('show')
    .description('one user (GET /api/admin/users/<id>)')
    .argument('<id-or-email>')
    .action(async (idOrEmail: string, _options: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const id = await userId(ctx, idOrEmail);
      showUser(ctx.out, (await request(ctx.target, { method: 'GET', path: `${USERS}/${segment(id)}`, as: 'admin' })).body);
    });

  users
    .command('history')
    .description("the user's audit trail (GET /api/admin/users/<id>/history)")
    .argument('<id-or-email>')
    .action(async (idOrEmail: string, _options: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const id = await userId(ctx, idOrEmail);
      const { body } = await request(ctx.target, { method: 'GET', path: `${USERS}/${segment(id)}/history`, as: 'admin' });
      type Change = { action: string; actor: string; fields: string[]; at: string };
      show(ctx.out, body, () =>
        table(ctx.out, (body as { history: Change[] }).history, [
          ['at', (c) => c.at],
          ['action', (c) => c.action],
          ['actor', (c) => c.actor],
          ['fields', (c) => c.fields.join(', ')],
        ]),
      );
    });

  users
    .command('disable')
    .description('disable the account and revoke its tokens (PATCH {"disabled": true})')
    .argument('<id-or-email>')
    .action((idOrEmail: string, _options: unknown, cmd: Command) => patch(cmd, idOrEmail, { disabled: true }));
  users
    .command('enable')
    .description('enable the account again (PATCH {"disabled": false})')
    .argument('<id-or-email>')
    .action((idOrEmail: string, _options: unknown, cmd: Command) => patch(cmd, idOrEmail, { disabled: false }));
  users
    .command('roles')
    .description('replace the roles (PATCH {"roles": [...]})')
    .argument('<id-or-email>')
    .requiredOption('--role <role>', 'a role (repeat for more)', (role: string, roles: string[] = []) => [...roles, role])
    .action((idOrEmail: string, options: { role: string[] }, cmd: Command) => patch(cmd, idOrEmail, { roles: options.role }));
  users
    .command('password')
    .description('set a new password, prompted for or read from stdin (PATCH {"password": ...})')
    .argument('<id-or-email>')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (idOrEmail: string, options: { passwordStdin?: boolean }, cmd: Command) =>
      patch(cmd, idOrEmail, { password: await readPassword(options.passwordStdin, `new password for ${idOrEmail}: `) }),
    );
  users
    .command('delete')
    .description('delete the user and revoke their tokens (DELETE /api/admin/users/<id>)')
    .argument('<id-or-email>')
    .action(async (idOrEmail: string, _options: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const id = await userId(ctx, idOrEmail);
      await request(ctx.target, { method: 'DELETE', path: `${USERS}/${segment(id)}`, as: 'admin' });
      show(ctx.out, { deleted: id }, () => ctx.out.line(`deleted user ${idOrEmail}${id === idOrEmail ? '' : ` (id ${id})`}`));
    });
}

interface PrincipalIndexView {
  principal: string;
  index: string;
  chunks: number;
  ready: boolean;
  createdAt: string;
}

const SEARCH_INDEXES = '/api/admin/search/indexes';

function searchIndexCommands(program: Command, context: (cmd: Command) => Context): void {
  const indexes = program
    .command('search-indexes')
    .description("per-principal HNSW indexes: a role's own vector index, for roles that read a mid-sized share of the chunks");
  const columns: Column<PrincipalIndexView>[] = [
    ['entry', (i) => i.principal],
    ['chunks', (i) => i.chunks],
    ['ready', (i) => i.ready],
    ['index', (i) => i.index],
    ['created', (i) => i.createdAt],
  ];
  indexes
    .command('list')
    .description(`the principal indexes (GET ${SEARCH_INDEXES})`)
    .action(async (_options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: SEARCH_INDEXES, as: 'admin' });
      show(out, body, () => table(out, (body as { indexes: PrincipalIndexView[] }).indexes, columns, 'no principal indexes'));
    });
  indexes
    .command('create')
    .description(`build the index of an access-list entry, e.g. role:support (PUT ${SEARCH_INDEXES}/<entry>)`)
    .argument('<entry>', 'role:<name>, user:<id> or public')
    .action(async (entry: string, _options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      const { status, body } = await request(target, { method: 'PUT', path: `${SEARCH_INDEXES}/${segment(entry)}`, as: 'admin' });
      show(out, body, () => {
        if (status === 202) out.line(`building the index of ${entry}: it goes on on the server; \`aikb search-indexes list\` shows when it is ready`);
        else record(out, body);
      });
    });
  indexes
    .command('tune')
    .description(`build indexes for the entries reading a mid-sized share of the chunks, drop those that left it (POST ${SEARCH_INDEXES}/_tune)`)
    .option('--min-share <share>', 'least share of the chunks an entry reads (0.02 or 2%; default 2%)', share)
    .option('--max-share <share>', 'largest share (default 30%)', share)
    .option('--min-chunks <n>', 'least chunks an entry reads (default 1000)', integer(0, 1_000_000_000))
    .option('--no-drop', 'keep the indexes of entries that left the range')
    .option('--dry-run', 'only say what would be done')
    .action(async (options: { minShare?: number; maxShare?: number; minChunks?: number; drop: boolean; dryRun?: boolean }, cmd: Command) => {
      const { target, out } = context(cmd);
      const json = {
        ...(options.minShare !== undefined ? { minShare: options.minShare } : {}),
        ...(options.maxShare !== undefined ? { maxShare: options.maxShare } : {}),
        ...(options.minChunks !== undefined ? { minChunks: options.minChunks } : {}),
        drop: options.drop,
        dryRun: options.dryRun === true,
      };
      const { status, body } = await request(target, { method: 'POST', path: `${SEARCH_INDEXES}/_tune`, as: 'admin', json });
      show(out, body, () => {
        if (status === 202) {
          out.line('tuning goes on on the server: `aikb search-indexes list` shows the indexes as they become ready');
          return;
        }
        const plan = body as { created: string[]; dropped: string[]; kept: string[]; skipped: Array<{ principal: string; reason: string }> };
        const verb = options.dryRun ? 'would ' : '';
        const rows = [
          ...plan.created.map((entry) => ({ entry, action: `${verb}build` })),
          ...plan.dropped.map((entry) => ({ entry, action: `${verb}drop` })),
          ...plan.kept.map((entry) => ({ entry, action: 'keep' })),
          ...plan.skipped.map((s) => ({ entry: s.principal, action: `skip: ${s.reason}` })),
        ];
        table(
          out,
          rows,
          [
            ['entry', (r) => r.entry],
            ['action', (r) => r.action],
          ],
          'nothing to do: no entry reads a share in the range',
        );
      });
    });
  indexes
    .command('drop')
    .description(`drop the index of an access-list entry (DELETE ${SEARCH_INDEXES}/<entry>)`)
    .argument('<entry>')
    .action(async (entry: string, _options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      await request(target, { method: 'DELETE', path: `${SEARCH_INDEXES}/${segment(entry)}`, as: 'admin' });
      show(out, { dropped: entry }, () => out.line(`dropped the index of ${entry}`));
    });
}

/** The commands made with the admin token. */
export function adminCommands(program: Command, context: (cmd: Command) => Context): void {
  flagCommands(program, context);
  rollbackCommand(program, context);
  cacheCommands(program, context);
  observabilityCommands(program, context);
  sagaCommands(program, context);
  userCommands(program, context);
  searchIndexCommands(program, context);
}
