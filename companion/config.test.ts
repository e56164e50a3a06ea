import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isProtocolError } from '../shared/errors.ts';
import { configFromEnv, defaults, loadConfig, type LoadConfigOptions } from './config.ts';

const root = mkdtempSync(join(tmpdir(), 'imagine-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A fresh data folder, with `config.json` holding `file` when given (a string is written as is). */
function dataDir(file?: unknown): string {
  const dir = join(root, `data-${++count}`);
  mkdirSync(dir);
  if (file !== undefined) {
    writeFileSync(join(dir, 'config.json'), typeof file === 'string' ? file : JSON.stringify(file));
  }
  return dir;
}

/** Asserts loadConfig throws ERR_CONFIG_INVALID whose message names each of `names`. */
function rejects(options: LoadConfigOptions, names: (string | RegExp)[]) {
  assert.throws(
    () => loadConfig(options),
    (error: unknown) => {
      assert.ok(isProtocolError(error, 'ERR_CONFIG_INVALID'), `got ${String(error)}`);
      for (const name of names) {
        if (typeof name === 'string') assert.ok(error.message.includes(name), `"${error.message}" does not name ${name}`);
        else assert.match(error.message, name);
      }
      return true;
    },
  );
}

describe('loadConfig', () => {
  test('defaults: a data folder under the working directory, loopback, port 7420, both roles', () => {
    const cwd = dataDir();
    const config = loadConfig({ cwd });
    const { dataDir: dir, agentWorkDir: workDir, ...rest } = config;
    assert.equal(dir, join(cwd, '.imagine'));
    assert.equal(workDir, join(cwd, '.imagine', 'checkouts'), 'checkouts go under the data folder');
    const { dataDir: _default, publicOrigin: _none, agentWorkDir: _work, smtpUrl: _smtp, smtpFrom: _from, ...expected } = defaults;
    assert.deepEqual(rest, expected);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 7420);
    assert.equal(config.role, 'both');
    assert.equal(config.demo, false);
    assert.equal(config.publicOrigin, undefined);
  });

  test('precedence: defaults < config.json < environment < flags', () => {
    const dir = dataDir({ host: '0.0.0.0', port: 1111, role: 'agent', logLevel: 'debug', maxPageSize: 50 });
    const env = { IMAGINE_HOST: '::1', IMAGINE_PORT: '2222', IMAGINE_LOG_LEVEL: 'warn' };
    const config = loadConfig({ env, flags: { dataDir: dir, port: 3333 } });
    assert.equal(config.maxPageSize, 50, 'file over defaults');
    assert.equal(config.role, 'agent', 'file over defaults');
    assert.equal(config.logLevel, 'warn', 'environment over file');
    assert.equal(config.host, '::1', 'environment over file');
    assert.equal(config.port, 3333, 'flags over environment');
    assert.equal(config.signedUrlTtlSeconds, defaults.signedUrlTtlSeconds, 'defaults where nothing is set');
  });

  test('the data folder comes from flags, then IMAGINE_DATA, and its config.json is the one read', () => {
    const fromEnv = dataDir({ port: 4001 });
    const fromFlags = dataDir({ port: 4002 });
    assert.equal(loadConfig({ env: { IMAGINE_DATA: fromEnv } }).port, 4001);
    const config = loadConfig({ env: { IMAGINE_DATA: fromEnv }, flags: { dataDir: fromFlags } });
    assert.equal(config.dataDir, fromFlags);
    assert.equal(config.port, 4002);
  });

  test('flags left undefined do not hide lower layers', () => {
    const dir = dataDir({ port: 5555 });
    const config = loadConfig({ flags: { dataDir: dir, port: undefined, host: undefined } });
    assert.equal(config.port, 5555);
    assert.equal(config.host, defaults.host);
  });

  test('readFile: false ignores config.json', () => {
    const dir = dataDir({ port: 6666 });
    assert.equal(loadConfig({ flags: { dataDir: dir }, readFile: false }).port, defaults.port);
  });

  test('a relative data folder is resolved against cwd, or the working directory', () => {
    const cwd = dataDir();
    assert.equal(loadConfig({ cwd, flags: { dataDir: 'lib' } }).dataDir, join(cwd, 'lib'));
    assert.equal(loadConfig({ cwd, env: { IMAGINE_DATA: '../x' }, readFile: false }).dataDir, resolve(cwd, '../x'));
    assert.equal(loadConfig({ flags: { dataDir: 'rel' }, readFile: false }).dataDir, resolve('rel'));
  });

  test('the result is frozen', () => {
    const config = loadConfig({ flags: { dataDir: dataDir() } });
    assert.ok(Object.isFrozen(config));
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
    assert.ok(Object.isFrozen(defaults));
  });

  test('publicOrigin is normalised', () => {
    const config = loadConfig({ flags: { dataDir: dataDir(), publicOrigin: 'HTTPS://Images.Example:443/' } });
    assert.equal(config.publicOrigin, 'https://images.example');
  });

  test('an out-of-range port: ERR_CONFIG_INVALID naming /port', () => {
    rejects({ flags: { dataDir: dataDir(), port: 70_000 } }, ['/port']);
  });

  test('an unknown role: ERR_CONFIG_INVALID naming /role', () => {
    rejects({ flags: { dataDir: dataDir(), role: 'x' as never } }, ['/role']);
  });

  test('several invalid values from different layers: every one is named', () => {
    const dir = dataDir({ maxJsonBytes: 10 });
    rejects({ env: { IMAGINE_PORT: 'abc' }, flags: { dataDir: dir, role: 'x' as never } }, [
      '/port',
      '/role',
      '/maxJsonBytes',
    ]);
  });

  test(
    'many invalid values at once: every one is named',
    () => {
      rejects(
        {
          flags: {
            dataDir: dataDir(),
            port: 70_000,
            role: 'x' as never,
            logLevel: 'loud' as never,
            maxPageSize: 0,
            signedUrlTtlSeconds: 1,
          },
        },
        ['/port', '/role', '/logLevel', '/maxPageSize', '/signedUrlTtlSeconds'],
      );
    },
  );

  test(
    'an invalid publicOrigin: ERR_CONFIG_INVALID',
    () => {
      rejects({ flags: { dataDir: dataDir(), publicOrigin: 'ftp://images.example' } }, ['publicOrigin']);
    },
  );

  test('an unknown key in config.json (a typo) is refused, not ignored', () => {
    rejects({ flags: { dataDir: dataDir({ prot: 7420 }) } }, ['prot']);
  });

  test('config.json that is not JSON: ERR_CONFIG_INVALID naming the file', () => {
    const dir = dataDir('{ "port": 7420, ');
    rejects({ flags: { dataDir: dir } }, [join(dir, 'config.json')]);
  });

  test('config.json that is an array or a scalar: ERR_CONFIG_INVALID naming the file', () => {
    for (const text of ['[1, 2]', '42', 'null', '"x"']) {
      const dir = dataDir(text);
      rejects({ flags: { dataDir: dir } }, [join(dir, 'config.json'), /not a JSON object/]);
    }
  });

  test('config.json with a value of the wrong type: ERR_CONFIG_INVALID naming it', () => {
    rejects({ flags: { dataDir: dataDir({ port: '8080' }) } }, ['/port']);
    rejects({ flags: { dataDir: dataDir({ demo: 'yes' }) } }, ['/demo']);
  });
});

describe('configFromEnv', () => {
  test('reads IMAGINE_* variables, ignores empty ones, and turns integers into numbers', () => {
    assert.deepEqual(
      configFromEnv({
        IMAGINE_DATA: '/srv/imagine',
        IMAGINE_HOST: '',
        IMAGINE_PORT: '8080',
        IMAGINE_ROLE: 'library',
        IMAGINE_PUBLIC_ORIGIN: 'https://images.example',
        IMAGINE_LOG_LEVEL: 'debug',
        IMAGINE_MAX_UPLOAD_BYTES: '1048576',
        HOME: '/root',
      }),
      {
        dataDir: '/srv/imagine',
        port: 8080,
        role: 'library',
        publicOrigin: 'https://images.example',
        logLevel: 'debug',
        maxUploadBytes: 1_048_576,
      },
    );
  });

  test('a non-integer number stays a string, so validation names it', () => {
    assert.deepEqual(configFromEnv({ IMAGINE_PORT: '80.5' }), { port: '80.5' });
    assert.deepEqual(configFromEnv({ IMAGINE_PORT: 'abc' }), { port: 'abc' });
  });
});
