import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadError, ensureDownloaded, sha256Matches } from '@kiln/data';

const body = Buffer.from(Array.from({ length: 50000 }, (_, i) => (i * 7) % 256));
const sha = createHash('sha256').update(body).digest('hex');
let server: Server;
let base = '';
const requests: { path: string; range?: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push({ path: req.url ?? '', range: req.headers.range });
    if (req.url === '/missing') {
      res.writeHead(404).end();
      return;
    }
    const data = req.url === '/corrupt' ? Buffer.from(body).fill(1, 100, 200) : body;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && req.url === '/file') {
      const from = Number(m[1]);
      if (from >= data.length) {
        res.writeHead(416).end();
        return;
      }
      res.writeHead(206, { 'content-range': `bytes ${from}-${data.length - 1}/${data.length}` }).end(data.subarray(from));
      return;
    }
    res.writeHead(200, { 'content-length': data.length }).end(data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('ensureDownloaded', () => {
  it('downloads, verifies the SHA-256, and uses the cached copy next time', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-dl-'));
    const file = { name: 'data.bin', urls: [`${base}/missing`, `${base}/file`], sha256: sha };
    const got = await ensureDownloaded(file, dir);
    expect(readFileSync(got).equals(body)).toBe(true);
    const n = requests.length;
    await ensureDownloaded(file, dir);
    expect(requests.length).toBe(n);
  });

  it('resumes a partial download with a Range request', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-dl-'));
    writeFileSync(path.join(dir, 'data.bin.part'), body.subarray(0, 12345));
    await ensureDownloaded({ name: 'data.bin', urls: [`${base}/file`], sha256: sha }, dir);
    expect(requests[requests.length - 1].range).toBe('bytes=12345-');
    expect(readFileSync(path.join(dir, 'data.bin')).equals(body)).toBe(true);
    // A complete .part (server answers 416) is verified and kept.
    const dir2 = mkdtempSync(path.join(os.tmpdir(), 'kiln-dl-'));
    writeFileSync(path.join(dir2, 'data.bin.part'), body);
    await ensureDownloaded({ name: 'data.bin', urls: [`${base}/file`], sha256: sha }, dir2);
    expect(readFileSync(path.join(dir2, 'data.bin')).equals(body)).toBe(true);
  });

  it('accepts a recorded SHA-256 prefix (torchvision publishes 8 digits), and rejects shorter ones', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-dl-'));
    const got = await ensureDownloaded({ name: 'data.bin', urls: [`${base}/file`], sha256: sha.slice(0, 8) }, dir);
    expect(readFileSync(got).equals(body)).toBe(true);
    await expect(ensureDownloaded({ name: 'c.bin', urls: [`${base}/corrupt`], sha256: sha.slice(0, 8) }, dir)).rejects.toThrow(/SHA-256 mismatch/);
    expect(sha256Matches(sha, sha.slice(0, 7))).toBe(false);
    expect(sha256Matches(sha, sha.toUpperCase())).toBe(true);
  });

  it('rejects a file with the wrong hash and leaves nothing behind', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-dl-'));
    await expect(ensureDownloaded({ name: 'data.bin', urls: [`${base}/corrupt`], sha256: sha }, dir)).rejects.toThrow(/SHA-256 mismatch/);
    expect(existsSync(path.join(dir, 'data.bin'))).toBe(false);
    expect(existsSync(path.join(dir, 'data.bin.part'))).toBe(false);
  });

  it('offline: a typed error that says where to put the file by hand', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-dl-'));
    // Port 9 on 127.0.0.1 (discard) refuses connections here: the same failure as no network.
    const err = await ensureDownloaded({ name: 'data.bin', urls: ['http://127.0.0.1:9/data.bin'], sha256: sha }, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).hint).toContain(path.join(dir, 'data.bin'));
    expect((err as DownloadError).hint).toContain(sha);
  });
});
