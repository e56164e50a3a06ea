import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryStore } from './memory-store.ts';
import { loadAgentSettings, parseAgentUrl, saveAgentSettings, STORAGE_KEYS, type KeyValueStore } from './settings.ts';

test('preview: same origin, token from the page wins over a stored one', () => {
  const store = memoryStore();
  store.setItem(STORAGE_KEYS.token, 'old');
  const s = loadAgentSettings({ uxp: false, pageOrigin: 'http://127.0.0.1:5000', pageToken: 'fresh' }, store);
  assert.deepEqual(s, { baseUrl: 'http://127.0.0.1:5000', token: 'fresh', tokenSource: 'page' });
});

test('preview without a page token falls back to the stored one', () => {
  const store = memoryStore();
  store.setItem(STORAGE_KEYS.token, ' t1 ');
  const s = loadAgentSettings({ uxp: false, pageOrigin: 'http://localhost:7420' }, store);
  assert.equal(s.token, 't1');
  assert.equal(s.tokenSource, 'stored');
});

test('UXP: default agent address, settable', () => {
  const store = memoryStore();
  assert.equal(loadAgentSettings({ uxp: true }, store).baseUrl, 'http://127.0.0.1:7420');
  assert.equal(loadAgentSettings({ uxp: true }, store).tokenSource, 'none');
  saveAgentSettings(store, { baseUrl: 'http://127.0.0.1:7500', token: 'abc' });
  assert.deepEqual(loadAgentSettings({ uxp: true }, store), { baseUrl: 'http://127.0.0.1:7500', token: 'abc', tokenSource: 'stored' });
  saveAgentSettings(store, { token: '  ' });
  assert.equal(loadAgentSettings({ uxp: true }, store).token, undefined);
});

test('a storage that throws (UXP storage lost) reads as empty', () => {
  const broken: KeyValueStore = {
    getItem() {
      throw new Error('gone');
    },
    setItem() {},
    removeItem() {},
  };
  assert.equal(loadAgentSettings({ uxp: true }, broken).baseUrl, 'http://127.0.0.1:7420');
});

test('agent addresses: loopback http(s) origins only', () => {
  assert.deepEqual(parseAgentUrl('http://127.0.0.1:7420/x'), { ok: true, value: 'http://127.0.0.1:7420' });
  assert.deepEqual(parseAgentUrl(' http://localhost:9000 '), { ok: true, value: 'http://localhost:9000' });
  assert.equal(parseAgentUrl('127.0.0.1:7420').ok, false);
  assert.equal(parseAgentUrl('http://images.example').ok, false);
  assert.equal(parseAgentUrl('file:///etc/passwd').ok, false);
  assert.equal(parseAgentUrl('').ok, false);
});
