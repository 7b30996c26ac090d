import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, statSync, createWriteStream, unlinkSync } from 'node:fs';
import path from 'node:path';
import { KilnError } from '@kiln/core';

/** A file to download: its name, mirrors and checksum. */
export interface RemoteFile {
  /** File name inside the cache directory. */
  name: string;
  /** Mirrors, tried in order. */
  urls: string[];
  /**
   * Lower-case hex SHA-256 of the complete file, or a prefix of it (at least 8 digits) where only
   * that is published (torchvision's weight files carry the first 8 digits in their names).
   */
  sha256: string;
}

/** Whether a computed digest matches the recorded one (the whole digest, or the recorded prefix). */
export function sha256Matches(digest: string, recorded: string): boolean {
  return recorded.length >= 8 && digest.startsWith(recorded.toLowerCase());
}

/** A download failed; the message says why and, where there is one, the fix. */
export class DownloadError extends KilnError {
  constructor(file: string, reason: string, hint?: string) {
    super('E_DOWNLOAD', `could not download ${file}: ${reason}`, { where: file, hint });
  }
}

/** Lower-case hex SHA-256 of a file's bytes. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return h.digest('hex');
}

function reasonOf(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  return e.cause instanceof Error ? `${e.message} (${e.cause.message})` : e.message;
}

/**
 * Fetches `file` into `cacheDir` unless a copy with the right SHA-256 is there. Partial downloads
 * are kept as `<name>.part` and resumed with an HTTP Range request; the final file appears only
 * after its hash checks out (rename), so an interrupted download never leaves a bad file behind.
 * When every mirror fails (offline, blocked, moved), the error says where to put the file by hand.
 */
export async function ensureDownloaded(file: RemoteFile, cacheDir: string, fetchImpl: typeof fetch = fetch): Promise<string> {
  mkdirSync(cacheDir, { recursive: true });
  const dest = path.join(cacheDir, file.name);
  if (existsSync(dest) && sha256Matches(await sha256File(dest), file.sha256)) return dest;
  const part = `${dest}.part`;
  const errors: string[] = [];
  for (const url of file.urls) {
    try {
      const have = existsSync(part) ? statSync(part).size : 0;
      const res = await fetchImpl(url, { headers: have ? { Range: `bytes=${have}-` } : {} });
      // 416: the range starts at the end, i.e. the partial file is already complete.
      if (res.status === 416 && have > 0) {
        await res.body?.cancel();
      } else {
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        const append = have > 0 && res.status === 206;
        const out = createWriteStream(part, { flags: append ? 'a' : 'w' });
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
          }
        } finally {
          await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
        }
      }
      const got = await sha256File(part);
      if (!sha256Matches(got, file.sha256)) {
        unlinkSync(part);
        throw new Error(`SHA-256 mismatch (expected ${file.sha256}, got ${got})`);
      }
      renameSync(part, dest);
      return dest;
    } catch (e) {
      errors.push(`${url}: ${reasonOf(e)}`);
    }
  }
  throw new DownloadError(
    file.name,
    errors.join('; '),
    `without network access, download ${file.urls[0]} elsewhere and copy it to ${dest} (SHA-256 ${file.sha256}); a partial ${path.basename(part)} there is resumed on the next try`,
  );
}
