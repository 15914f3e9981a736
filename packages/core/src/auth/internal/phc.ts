/** A parsed PHC string: `$id$param=value,...$salt$hash` (an optional `v=` segment is kept apart). */
export interface PhcString {
  readonly id: string;
  readonly version: number | undefined;
  readonly params: Readonly<Record<string, number>>;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

const B64 = /^[A-Za-z0-9+/]+$/;

/** Parses a PHC string; `undefined` when it is not one. */
export function parsePhc(encoded: string): PhcString | undefined {
  if (typeof encoded !== 'string' || encoded.length > 1024) return undefined;
  const parts = encoded.split('$');
  if (parts[0] !== '') return undefined;
  const id = parts[1];
  let rest = parts.slice(2);
  if (!id || !/^[a-z0-9-]{1,32}$/.test(id)) return undefined;
  let version: number | undefined;
  if (rest[0]?.startsWith('v=')) {
    version = Number(rest[0].slice(2));
    if (!Number.isInteger(version)) return undefined;
    rest = rest.slice(1);
  }
  if (rest.length !== 3) return undefined;
  const [paramText, saltText, hashText] = rest as [string, string, string];
  const params: Record<string, number> = {};
  for (const pair of paramText.split(',')) {
    const match = /^([a-z0-9-]{1,32})=(\d{1,10})$/.exec(pair);
    if (!match) return undefined;
    params[match[1]!] = Number(match[2]);
  }
  if (!B64.test(saltText) || !B64.test(hashText)) return undefined;
  return { id, version, params, salt: Buffer.from(saltText, 'base64'), hash: Buffer.from(hashText, 'base64') };
}

/** Formats a PHC string with unpadded base64, as the PHC spec asks. */
export function formatPhc(id: string, params: Readonly<Record<string, number>>, salt: Buffer, hash: Buffer): string {
  const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
  const paramText = Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `$${id}$${paramText}$${b64(salt)}$${b64(hash)}`;
}
