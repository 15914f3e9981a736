import { openAsBlob, statSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { saveUserToken, userTokenFile } from './credentials';
import { CliFailure, request, segment } from './http';
import { record, show, table } from './output';
import { integer, readPassword, type Context } from './shared';

/** Content types by file extension, for an upload whose `--content-type` is not given. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.markdown': 'text/markdown',
  '.html': 'text/html',
  '.htm': 'text/html',
  '.csv': 'text/csv',
  '.json': 'application/json',
  '.pdf': 'application/pdf',
};

/** An ACL entry as the server takes it: `role:<role>` or `user:<id>`. */
function aclEntry(value: string, entries: string[] = []): string[] {
  return [...entries, value];
}

function loginCommand(program: Command, context: (cmd: Command) => Context, env: NodeJS.ProcessEnv): void {
  program
    .command('login')
    .description('sign in as a user (POST /auth/login) and save the user token for search and documents')
    .requiredOption('--email <email>', 'your email')
    .option('--password-stdin', 'read the password from stdin')
    .option('--save <file>', 'where to save the token (mode 0600)', userTokenFile(env))
    .action(async (options: { email: string; passwordStdin?: boolean; save: string }, cmd: Command) => {
      const { target, out } = context(cmd);
      const password = await readPassword(options.passwordStdin, `password for ${options.email}: `);
      const { body } = await request(target, { method: 'POST', path: '/auth/login', as: 'anonymous', json: { email: options.email, password } });
      const { token, expiresIn } = body as { token: string; expiresIn: number };
      if (typeof token !== 'string') throw new CliFailure('the server answered the login without a token', 1);
      saveUserToken(options.save, token);
      // The token goes to the file only: never to the terminal or a script's output.
      show(out, { email: options.email, tokenFile: options.save, expiresIn }, () =>
        out.line(`signed in as ${options.email}; token saved to ${options.save} (expires in ${expiresIn} s)`),
      );
    });
}

function searchCommand(program: Command, context: (cmd: Command) => Context): void {
  program
    .command('search')
    .description('search the documents you may read, as a user (POST /api/search)')
    .argument('<query>', 'what to look for')
    .option('-k, --k <n>', 'at most n results', integer(1, 100))
    .addOption(new Option('--mode <mode>', 'how to match').choices(['hybrid', 'text', 'vector']))
    .action(async (query: string, options: { k?: number; mode?: string }, cmd: Command) => {
      const { target, out } = context(cmd);
      const json = { query, ...(options.k !== undefined ? { k: options.k } : {}), ...(options.mode !== undefined ? { mode: options.mode } : {}) };
      const { body } = await request(target, { method: 'POST', path: '/api/search', as: 'user', json });
      type Result = { documentId: string; title: string; snippet: string; score: number; leg: string };
      const answer = body as { results: Result[]; strategy: string; complete: boolean; mode: string; tookMs: number };
      show(out, body, () => {
        table(
          out,
          answer.results,
          [
            ['score', (r) => r.score.toFixed(4)],
            ['title', (r) => r.title],
            ['document', (r) => r.documentId],
            ['snippet', (r) => (r.snippet.length > 80 ? `${r.snippet.slice(0, 79)}…` : r.snippet)],
          ],
          'no results',
        );
        out.note(`${answer.mode} search, ${answer.strategy}, ${answer.complete ? 'complete' : 'may be incomplete'}, ${answer.tookMs} ms`);
      });
    });
}

function documentCommands(program: Command, context: (cmd: Command) => Context): void {
  const documents = program.command('documents').description('documents, as a user: list, upload, delete');

  documents
    .command('list')
    .description('the documents you may read (GET /api/documents)')
    .option('--limit <n>', 'at most n documents', integer(1, 1000))
    .option('--after <cursor>', 'the next page, from a previous answer')
    .action(async (options: { limit?: number; after?: string }, cmd: Command) => {
      const { target, out } = context(cmd);
      const { body } = await request(target, { method: 'GET', path: '/api/documents', as: 'user', query: { ...options } });
      type Summary = { id: string; title: string; chunks: number; updatedAt: string };
      const page = body as { documents: Summary[]; nextCursor?: string };
      show(out, body, () => {
        table(out, page.documents, [
          ['id', (d) => d.id],
          ['title', (d) => d.title],
          ['chunks', (d) => d.chunks],
          ['updated', (d) => d.updatedAt],
        ]);
        if (page.nextCursor) out.note(`more: --after ${page.nextCursor}`);
      });
    });

  documents
    .command('upload')
    .description('upload a file as a document (POST /api/documents/upload, multipart/form-data)')
    .argument('<file>', 'the file to upload')
    .option('--title <title>', 'its title (default: the file name)')
    .option('--acl <entry>', 'who may read it, e.g. role:eng or user:42 (repeat for more)', aclEntry)
    .option('--content-type <type>', 'its media type (default: from the extension)')
    .option('--idempotency-key <key>', 'the same key again returns the first upload instead of a second one')
    .action(async (file: string, options: { title?: string; acl?: string[]; contentType?: string; idempotencyKey?: string }, cmd: Command) => {
      const { target, out } = context(cmd);
      let stats;
      try {
        stats = statSync(file);
      } catch (error) {
        throw new CliFailure(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 2);
      }
      if (!stats.isFile()) throw new CliFailure(`${file} is not a file`, 2);
      const type = options.contentType ?? CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
      // The fields come before the file part, as the server reads them first; the file is streamed from disk.
      const form = new FormData();
      form.append('title', options.title ?? path.basename(file));
      if (options.acl) form.append('acl', JSON.stringify(options.acl));
      form.append('file', await openAsBlob(file, { type }), path.basename(file));
      const { body } = await request(target, {
        method: 'POST',
        path: '/api/documents/upload',
        as: 'user',
        form,
        headers: options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {},
      });
      show(out, body, () => record(out, body));
    });

  documents
    .command('delete')
    .description('delete a document (DELETE /api/documents/<id>)')
    .argument('<id>', 'the document id')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const { target, out } = context(cmd);
      await request(target, { method: 'DELETE', path: `/api/documents/${segment(id)}`, as: 'user' });
      show(out, { deleted: id }, () => out.line(`deleted document ${id}`));
    });
}

/** The commands made as a user (login, search, documents). */
export function userCommands(program: Command, context: (cmd: Command) => Context, env: NodeJS.ProcessEnv): void {
  loginCommand(program, context, env);
  searchCommand(program, context);
  documentCommands(program, context);
}
