import { createInterface } from 'node:readline';

/**
 * Reads a whole stream as text (a password piped in), at most `maxChars` characters.
 * @throws {RangeError} when the stream holds more
 */
export async function readAll(stream: NodeJS.ReadableStream, maxChars = 64 * 1024): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += chunk.toString();
    if (text.length > maxChars) throw new RangeError(`stdin holds more than ${maxChars} characters`);
  }
  return text;
}

/** Prompts on the terminal without echoing what is typed. */
export function promptHidden(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const output = rl as unknown as { _writeToOutput(s: string): void };
    let asked = false;
    output._writeToOutput = (s: string) => {
      if (!asked) process.stderr.write(s);
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    asked = true;
  });
}
