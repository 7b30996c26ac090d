import { KilnError, NotFoundError } from '@kiln/core';
import type { Storage } from './storage.js';
import { joinKey, keyDir, keyInside, normalizeKey } from './key-path.js';

/** Options of `IndexedDbStorage`. */
export interface IndexedDbStorageOptions {
  /** Database name (default `kiln`); each database holds one tree of names. */
  database?: string;
  /** The IndexedDB factory (default `globalThis.indexedDB`; tests in Node may pass a fake one). */
  indexedDB?: IDBFactory;
}

const STORE = 'files';

/**
 * The browser's storage: one IndexedDB record per file, keyed by its normalised name, holding its
 * bytes. Each write is one transaction (committed with strict durability where the browser offers
 * it), so it is atomic the way a rename is on disk; it survives a page reload and is shared by the
 * page's tabs. Use `downloadFile` to hand a checkpoint or log to the user.
 */
export class IndexedDbStorage implements Storage {
  readonly description: string;
  private readonly database: string;
  private readonly factory: IDBFactory | undefined;
  private opened: Promise<IDBDatabase> | undefined;

  constructor(options: IndexedDbStorageOptions = {}) {
    this.database = options.database ?? 'kiln';
    this.factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    this.description = `IndexedDB '${this.database}'`;
  }

  join(dir: string, name: string): string {
    return joinKey(dir, name);
  }

  inside(dir: string, name: string, argument: string): string {
    return keyInside(dir, name, argument);
  }

  isDirectlyIn(dir: string, name: string): boolean {
    return keyDir(name) === normalizeKey(dir);
  }

  async read(name: string, what = 'file'): Promise<Uint8Array> {
    const value = await this.request('readonly', (s) => s.get(normalizeKey(name)));
    if (value === undefined) throw new NotFoundError(`${what} '${name}'`, [`${this.description}: ${normalizeKey(name)}`]);
    return value as Uint8Array;
  }

  async write(name: string, data: Uint8Array | string): Promise<void> {
    // A copy of exactly these bytes (a view into a larger buffer would store all of it).
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data.slice();
    await this.request('readwrite', (s) => s.put(bytes, normalizeKey(name)));
  }

  async append(name: string, data: Uint8Array | string): Promise<void> {
    const key = normalizeKey(name);
    const add = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    // Read and write in one transaction, so two appends never lose each other's text.
    await this.transaction('readwrite', (s, done) => {
      const get = s.get(key);
      get.onsuccess = () => {
        const old = (get.result as Uint8Array | undefined) ?? new Uint8Array(0);
        const next = new Uint8Array(old.length + add.length);
        next.set(old);
        next.set(add, old.length);
        s.put(next, key).onsuccess = () => done(undefined);
      };
    });
  }

  async exists(name: string): Promise<boolean> {
    return (await this.request('readonly', (s) => s.count(normalizeKey(name)))) > 0;
  }

  async remove(name: string): Promise<void> {
    await this.request('readwrite', (s) => s.delete(normalizeKey(name)));
  }

  async list(dir: string): Promise<string[]> {
    const d = normalizeKey(dir);
    const prefix = d === '' ? '' : `${d}/`;
    // All keys, filtered here: a run keeps a few dozen files, and no IDBKeyRange global is needed
    // (an injected factory, as in tests, comes without one).
    const keys = (await this.request('readonly', (s) => s.getAllKeys())) as string[];
    return keys.filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/')).map((k) => k.slice(prefix.length)).sort();
  }

  async cleanUp(): Promise<void> {
    // Nothing to clear: a transaction that did not commit left nothing behind.
  }

  /** Every name in the database (all directories), sorted. */
  async names(): Promise<string[]> {
    return ((await this.request('readonly', (s) => s.getAllKeys())) as string[]).sort();
  }

  /** Deletes every file of this database. */
  async clear(): Promise<void> {
    await this.request('readwrite', (s) => s.clear());
  }

  /** Closes the connection (a later call opens it again). */
  async close(): Promise<void> {
    const db = await this.opened;
    this.opened = undefined;
    db?.close();
  }

  private open(): Promise<IDBDatabase> {
    const factory = this.factory;
    if (!factory) {
      return Promise.reject(new KilnError('E_NO_STORAGE', `${this.description} is not available here: no indexedDB`, { hint: 'run in a browser (or pass options.indexedDB); in Node use FileStorage' }));
    }
    this.opened ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = factory.open(this.database, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(new KilnError('E_NO_STORAGE', `cannot open ${this.description}`, { found: String(req.error), cause: req.error }));
      req.onblocked = () => reject(new KilnError('E_NO_STORAGE', `cannot open ${this.description}: another tab holds an older version open`, { hint: 'close the other tabs of this page' }));
    });
    const p = this.opened;
    p.catch(() => {
      if (this.opened === p) this.opened = undefined;
    });
    return p;
  }

  private request<T>(mode: IDBTransactionMode, make: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    return this.transaction(mode, (s, done) => {
      const r = make(s);
      r.onsuccess = () => done(r.result);
    });
  }

  /** Runs `body` in one transaction; resolves with what it passed to `done` once the transaction committed. */
  private async transaction<T>(mode: IDBTransactionMode, body: (s: IDBObjectStore, done: (v: T) => void) => void): Promise<T> {
    const db = await this.open();
    return new Promise<T>((resolve, reject) => {
      const tx = mode === 'readwrite' ? db.transaction(STORE, mode, { durability: 'strict' }) : db.transaction(STORE, mode);
      let result: T;
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(new KilnError('E_IO', `${this.description}: transaction failed`, { found: String(tx.error), cause: tx.error }));
      tx.onabort = () => reject(new KilnError('E_IO', `${this.description}: transaction aborted`, { found: String(tx.error), cause: tx.error }));
      body(tx.objectStore(STORE), (v) => {
        result = v;
      });
    });
  }
}
