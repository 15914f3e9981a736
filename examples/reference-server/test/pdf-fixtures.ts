/**
 * PDFs written by hand for tests: the smallest valid PDF syntax (a catalog, a page tree, pages
 * with a content stream, a standard Type 1 font, an xref table with correct byte offsets), so no
 * binary fixture is checked in and every test states what its PDF holds.
 */

/** One object of a PDF: its body (the text between `N 0 obj` and `endobj`). */
type PdfObject = string | { readonly dict: string; readonly stream: Buffer };

/** A PDF file from its objects (numbered from 1, the catalog first), with an xref table and trailer. */
function writePdf(objects: readonly PdfObject[], trailerExtra = ''): Buffer {
  // The binary comment line tells tools that the file is binary, as real writers do.
  const parts: Buffer[] = [Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let length = parts[0]!.length;
  const offsets: number[] = [];
  const push = (part: Buffer) => {
    parts.push(part);
    length += part.length;
  };
  objects.forEach((object, index) => {
    offsets.push(length);
    if (typeof object === 'string') {
      push(Buffer.from(`${index + 1} 0 obj\n${object}\nendobj\n`, 'latin1'));
    } else {
      push(Buffer.from(`${index + 1} 0 obj\n${object.dict.replace(/>>\s*$/, `/Length ${object.stream.length} >>`)}\nstream\n`, 'latin1'));
      push(object.stream);
      push(Buffer.from('\nendstream\nendobj\n', 'latin1'));
    }
  });
  const xref = length;
  const rows = offsets.map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join('');
  push(
    Buffer.from(
      `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${rows}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R ${trailerExtra}>>\nstartxref\n${xref}\n%%EOF\n`,
      'latin1',
    ),
  );
  return Buffer.concat(parts);
}

/** A PDF string literal: backslash, parentheses escaped; only Latin-1 text (the font's encoding). */
function pdfString(text: string): string {
  return `(${text.replace(/[\\()]/g, (c) => `\\${c}`)})`;
}

/** The objects of a document whose pages have the given content streams (and resources). */
function documentObjects(pages: readonly { readonly content: string; readonly resources: string }[], extra: readonly PdfObject[] = []): PdfObject[] {
  // 1 catalog, 2 page tree, 3 font, then a page and its content per page, then `extra`.
  const firstPage = 4;
  const kids = pages.map((_, index) => `${firstPage + index * 2} 0 R`).join(' ');
  const objects: PdfObject[] = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
  ];
  pages.forEach((page, index) => {
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${firstPage + index * 2 + 1} 0 R /Resources << /Font << /F1 3 0 R >> ${page.resources} >> >>`,
      { dict: '<< >>', stream: Buffer.from(page.content, 'latin1') },
    );
  });
  return [...objects, ...extra];
}

/** The content stream that shows `lines` one under the other. */
function textContent(lines: readonly string[]): string {
  const shown = lines.map((line, index) => `${index === 0 ? '' : '0 -14 Td '}${pdfString(line)} Tj`).join('\n');
  return `BT /F1 12 Tf 72 720 Td\n${shown}\nET`;
}

/**
 * A PDF with a text layer: each element of `pages` is one page, its lines shown with Helvetica
 * (`BT /F1 12 Tf (line) Tj ET`). Latin-1 text only.
 * @example makeTextPdf(['Hello', 'world']) // one page, two lines
 */
export function makeTextPdf(...pages: readonly (readonly string[])[]): Buffer {
  return writePdf(documentObjects(pages.map((lines) => ({ content: textContent(lines), resources: '' }))));
}

/** A PDF whose one page is an image (a 2×2 grey bitmap) and nothing else: no text layer, like a scan. */
export function makeImageOnlyPdf(): Buffer {
  const image = {
    dict: '<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 8 >>',
    stream: Buffer.from([0x20, 0x80, 0x80, 0xe0]),
  };
  // The image is object 6 (after the catalog, page tree, font, page and its content).
  return writePdf(documentObjects([{ content: 'q 500 0 0 700 56 46 cm /Im1 Do Q', resources: '/XObject << /Im1 6 0 R >>' }], [image]));
}

/**
 * A PDF encrypted with a user password (the standard security handler, RC4 40-bit) whose check
 * value matches no password a reader can guess: it opens only with the password.
 */
export function makeEncryptedPdf(): Buffer {
  const hex32 = (byte: string) => `<${byte.repeat(32)}>`;
  const encrypt = `<< /Filter /Standard /V 1 /R 2 /O ${hex32('4f')} /U ${hex32('55')} /P -4 >>`;
  const objects = documentObjects([{ content: textContent(['Secret']), resources: '' }], [encrypt]);
  return writePdf(objects, `/Encrypt ${objects.length} 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>] `);
}

/** A file that starts like a PDF (`%PDF-1.4`) and then holds no PDF structure at all. */
export function corruptPdf(): Buffer {
  return Buffer.concat([
    Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1'),
    Buffer.from('this is not a PDF body: no objects, no xref, no trailer\n'.repeat(4)),
  ]);
}
