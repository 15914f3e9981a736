/**
 * OpenTelemetry → Prometheus names, as the OpenTelemetry Collector's Prometheus translator builds
 * them (`BuildCompliantName`): words of the instrument name joined by `_`, the unit as a suffix
 * (`s` → `_seconds`, `By` → `_bytes`, `{request}` annotations dropped, `x/y` → `_x_per_y`), `_ratio`
 * for gauges in unit `1`, and `_total` for counters.
 */

/** The Prometheus metric type an instrument becomes. */
export type PrometheusKind = 'counter' | 'gauge' | 'histogram';

const UNITS: Readonly<Record<string, string>> = {
  d: 'days',
  h: 'hours',
  min: 'minutes',
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  TiBy: 'tebibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  TBy: 'terabytes',
  m: 'meters',
  V: 'volts',
  A: 'amperes',
  J: 'joules',
  W: 'watts',
  g: 'grams',
  Cel: 'celsius',
  Hz: 'hertz',
  '%': 'percent',
};

const PER_UNITS: Readonly<Record<string, string>> = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week', mo: 'month', y: 'year' };

const words = (text: string): string[] => text.split(/[^a-zA-Z0-9]+/).filter(Boolean);

/** The Prometheus words of a unit (`{request}` → none, `By` → bytes, `By/s` → bytes per second). */
function unitWords(unit: string, kind: PrometheusKind): string[] {
  const plain = unit.replace(/\{[^}]*\}/g, '').trim();
  if (plain === '') return [];
  const [main = '', per] = plain.split('/', 2);
  const out: string[] = [];
  if (main === '1') {
    if (kind === 'gauge') out.push('ratio');
  } else if (main !== '') out.push(...words(UNITS[main] ?? main));
  if (per !== undefined && per !== '') out.push('per', ...words(PER_UNITS[per] ?? per));
  return out;
}

/**
 * The Prometheus name of an instrument: `http.server.request.duration` in `s` → `http_server_request_duration_seconds`,
 * counter `aikb.cache.requests` in `{request}` → `aikb_cache_requests_total`. A unit already
 * ending the name is not repeated; neither is `_total`.
 */
export function prometheusName(name: string, unit: string | undefined, kind: PrometheusKind): string {
  const tokens = words(name);
  const suffix = unitWords(unit ?? '', kind);
  const endsWith = (tail: string[]) => tail.length > 0 && tail.length <= tokens.length && tail.every((w, i) => tokens[tokens.length - tail.length + i] === w);
  if (kind === 'counter' && tokens.at(-1) === 'total') tokens.pop();
  if (suffix.length > 0 && !endsWith(suffix)) tokens.push(...suffix);
  if (kind === 'counter') tokens.push('total');
  const joined = tokens.join('_');
  return /^[0-9]/.test(joined) ? `_${joined}` : joined;
}

/**
 * A Prometheus label name for an attribute key: characters outside `[a-zA-Z0-9_]` become `_`, a
 * leading digit gets `key_` in front, and a leading `__` (reserved by Prometheus) gets `key`.
 * `undefined` for an empty key.
 */
export function labelName(key: string): string | undefined {
  const name = key.replace(/[^a-zA-Z0-9_]/g, '_');
  if (name === '') return undefined;
  if (/^[0-9]/.test(name)) return `key_${name}`;
  if (name.startsWith('__')) return `key${name}`;
  return name;
}
