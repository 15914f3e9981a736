/**
 * The text of an HTML document ({@link HtmlTextExtractor}): htmlparser2's streaming tokenizer (a
 * well-kept, dependency-light parser that decodes every named and numeric entity and copes with
 * tag soup), and a small handler that keeps what a reader sees.
 */
import { Parser } from 'htmlparser2';

/** Elements whose content is never text a reader sees (code, styles, fallbacks, inert templates, embedded vector markup). */
const SKIPPED = new Set(['script', 'style', 'noscript', 'template', 'iframe', 'object', 'svg', 'math', 'select', 'datalist']);

/** Elements that end a paragraph: a blank line before and after. */
const PARAGRAPHS = new Set([
  'p',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'blockquote',
  'pre',
  'table',
  'ul',
  'ol',
  'dl',
  'section',
  'article',
  'aside',
  'header',
  'footer',
  'nav',
  'main',
  'figure',
  'form',
  'fieldset',
  'details',
  'address',
  'hr',
  'title',
]);

/** Elements that end a line. */
const LINES = new Set(['br', 'div', 'li', 'tr', 'dt', 'dd', 'caption', 'figcaption', 'summary', 'legend', 'option', 'body', 'center']);

/** Elements that separate words: table cells. */
const CELLS = new Set(['td', 'th']);

/**
 * Turns HTML, fed in string chunks cut anywhere, into text: `<script>`, `<style>`, `<noscript>`,
 * `<template>`, `<iframe>`, `<svg>`, `<math>` and everything in `<head>` but the `<title>` are
 * dropped; block elements become line breaks (paragraph-like ones a blank line); entities are
 * decoded; whitespace is collapsed, except inside `<pre>`.
 */
export class HtmlTextExtractor {
  readonly #parser: Parser;
  readonly #out: string[] = [];
  #length = 0;
  /** The line being built (collapsed whitespace). */
  #line = '';
  /** Text inside `<pre>` so far, as it is. */
  #pre = '';
  /** The break owed before the next text: 0 none, 1 a line break, 2 a blank line. */
  #break = 0;
  #space = false;
  #skipped = 0;
  #inHead = false;
  #inTitle = 0;
  #inPre = 0;

  constructor() {
    this.#parser = new Parser(
      {
        onopentag: (name) => this.#open(name),
        onclosetag: (name) => this.#close(name),
        ontext: (text) => this.#text(text),
      },
      { decodeEntities: true, lowerCaseTags: true },
    );
  }

  /** How many characters of text so far (a lower bound until {@link end}). */
  get length(): number {
    return this.#length + this.#line.length + this.#pre.length;
  }

  write(html: string): void {
    this.#parser.write(html);
  }

  /** Ends the document; returns its text. */
  end(): string {
    this.#parser.end();
    this.#flush();
    return this.#out.join('');
  }

  #open(name: string): void {
    if (SKIPPED.has(name)) this.#skipped++;
    else if (name === 'head') this.#inHead = true;
    else if (name === 'body') this.#inHead = false;
    else if (name === 'title') this.#inTitle++;
    else if (name === 'pre') this.#inPre++;
    this.#boundary(name);
  }

  #close(name: string): void {
    if (SKIPPED.has(name)) this.#skipped = Math.max(0, this.#skipped - 1);
    else if (name === 'head') this.#inHead = false;
    else if (name === 'title') this.#inTitle = Math.max(0, this.#inTitle - 1);
    else if (name === 'pre') this.#inPre = Math.max(0, this.#inPre - 1);
    if (name !== 'br') this.#boundary(name);
  }

  #boundary(name: string): void {
    if (PARAGRAPHS.has(name)) this.#breakAtLeast(2);
    else if (LINES.has(name)) this.#breakAtLeast(1);
    else if (CELLS.has(name)) this.#space = true;
  }

  #breakAtLeast(level: number): void {
    this.#flush();
    this.#break = Math.max(this.#break, level);
    this.#space = false;
  }

  /** Moves the current line to the output. */
  #flush(): void {
    const line = this.#line.trimEnd();
    this.#line = '';
    if (line !== '') this.#emit(line);
    // Preformatted text keeps its spaces and line breaks (but a first newline, which is not content).
    const pre = this.#pre.replace(/\r\n?/g, '\n').replace(/^\n/, '').trimEnd();
    this.#pre = '';
    if (pre.trim() !== '') this.#emit(pre);
  }

  #emit(text: string): void {
    if (this.#length > 0 && this.#break > 0) {
      const separator = this.#break === 2 ? '\n\n' : '\n';
      this.#out.push(separator);
      this.#length += separator.length;
    }
    this.#break = 0;
    this.#out.push(text);
    this.#length += text.length;
  }

  #text(text: string): void {
    if (this.#skipped > 0 || (this.#inHead && this.#inTitle === 0)) return;
    if (this.#inPre > 0) {
      // Preformatted text keeps its spaces and line breaks (one leading newline is not content).
      this.#pre += text;
      return;
    }
    const words = text.split(/\s+/);
    for (const [index, word] of words.entries()) {
      if (index > 0) this.#space = true;
      if (word === '') continue;
      if (this.#space && this.#line !== '') this.#line += ' ';
      this.#line += word;
      this.#space = false;
    }
  }
}
