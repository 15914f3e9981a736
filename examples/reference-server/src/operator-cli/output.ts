import Table from 'cli-table3';

/** Where a command writes: tables for people, the server's JSON for scripts (`--json`). */
export interface Output {
  readonly json: boolean;
  /** Writes a line (or lines) to stdout. */
  line(text: string): void;
  /** Writes a note to stderr (kept out of what scripts parse). */
  note(text: string): void;
}

/** A column: its header and how a row gives its cell. */
export type Column<Row> = readonly [header: string, cell: (row: Row) => unknown];

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value) ?? '';
}

// No colours (the output is read in terminals, logs and CI alike), no rule between rows.
const plain = { style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } };

/** Prints the answer as JSON (`--json`: the server's body as is), or hands it to `human`. */
export function show(out: Output, body: unknown, human: () => void): void {
  if (out.json) out.line(JSON.stringify(body, null, 2));
  else human();
}

/** A table with one row per item; `empty` is printed instead of an empty table. */
export function table<Row>(out: Output, rows: readonly Row[], columns: ReadonlyArray<Column<Row>>, empty = '(none)'): void {
  if (rows.length === 0) {
    out.line(empty);
    return;
  }
  const t = new Table({ ...plain, head: columns.map(([header]) => header) });
  for (const row of rows) t.push(columns.map(([, cell]) => text(cell(row))));
  out.line(t.toString());
}

/** `[dotted.key, value]` for every leaf of a JSON object (arrays stay whole), at most `depth` levels down. */
function leaves(value: Record<string, unknown>, prefix = '', depth = 3): Array<[string, unknown]> {
  return Object.entries(value).flatMap(([key, field]): Array<[string, unknown]> =>
    typeof field === 'object' && field !== null && !Array.isArray(field) && depth > 1 && Object.keys(field).length > 0
      ? leaves(field as Record<string, unknown>, `${prefix}${key}.`, depth - 1)
      : [[`${prefix}${key}`, field]],
  );
}

/** A two-column table of one object's fields, nested ones as `dotted.keys`. */
export function record(out: Output, value: unknown): void {
  const t = new Table(plain);
  for (const [key, field] of leaves((value ?? {}) as Record<string, unknown>)) t.push({ [key]: text(field) });
  out.line(t.toString());
}
