/**
 * The agent's checkout and push machinery for one `AgentServices`: the checkouts, the push
 * queue and its worker, and the workflow policies of the connections. Opened once, by the first
 * route plugin that needs it (so the worker runs as soon as the app is built, and a queue left
 * by a stop is worked off at start), published as `services.queue` for the status, and closed
 * with the services.
 */
import { join } from 'node:path';
import type { WorkflowPolicy } from '../../shared/schemas/agent.ts';
import { Checkouts, type CheckoutOptions } from './checkouts.ts';
import { readJsonFile, writeJsonFile } from './json-file.ts';
import { policyFromCapabilities } from './policy.ts';
import { PushQueue, type PushQueueOptions } from './queue.ts';
import { isUnreachable, type AgentServices } from './services.ts';

export const POLICIES_FILE = 'policies.json';

export interface AgentWork {
  checkouts: Checkouts;
  queue: PushQueue;
  policies: PolicyCache;
}

export type AgentWorkOptions = CheckoutOptions & Omit<PushQueueOptions, 'policy'>;

const works = new WeakMap<AgentServices, Promise<AgentWork>>();
const testOptions = new WeakMap<AgentServices, AgentWorkOptions>();

/** Tunes the machinery of `services` before it opens (tests: short retry waits). */
export function configureAgentWork(services: AgentServices, options: AgentWorkOptions): void {
  testOptions.set(services, options);
}

/** The machinery of `services`, opened on first use. */
export function agentWork(services: AgentServices): Promise<AgentWork> {
  let work = works.get(services);
  if (!work) {
    work = openAgentWork(services, testOptions.get(services) ?? {});
    works.set(services, work);
  }
  return work;
}

async function openAgentWork(services: AgentServices, options: AgentWorkOptions): Promise<AgentWork> {
  const policies = await PolicyCache.open(services);
  const checkouts = await Checkouts.open(services, options);
  const queue = await PushQueue.open(services, checkouts, { ...options, policy: (id) => policies.get(id) });
  services.queue = queue;
  services.onClose(async () => {
    await queue.close();
    await checkouts.close();
  });
  return { checkouts, queue, policies };
}

/**
 * The workflow policy of each connection, from its capabilities document; the last one seen is
 * kept (`<data>/agent/policies.json`) so a push made offline is still checked against it.
 */
type KnownPolicies = Record<string, { policy: WorkflowPolicy; fetched: string }>;

export class PolicyCache {
  readonly #services: AgentServices;
  readonly #path: string;
  #known: KnownPolicies;

  private constructor(services: AgentServices, path: string, known: KnownPolicies) {
    this.#services = services;
    this.#path = path;
    this.#known = known;
  }

  static async open(services: AgentServices): Promise<PolicyCache> {
    const path = join(services.dir, POLICIES_FILE);
    const known = await readJsonFile<KnownPolicies>(path, {});
    return new PolicyCache(services, path, typeof known === 'object' && known !== null ? known : {});
  }

  /** The connection's policy now, or the last one seen when its server cannot be reached ({} if never). */
  async get(connectionId: string): Promise<WorkflowPolicy> {
    this.#services.connections.require(connectionId);
    try {
      const capabilities = await this.#services.client(connectionId, { timeoutMs: 10_000 }).capabilities();
      const policy = policyFromCapabilities(capabilities);
      if (JSON.stringify(this.#known[connectionId]?.policy) !== JSON.stringify(policy)) {
        this.#known = { ...this.#known, [connectionId]: { policy, fetched: new Date().toISOString() } };
        await writeJsonFile(this.#path, this.#known).catch(() => {});
      }
      return policy;
    } catch (error) {
      if (isUnreachable(error)) return this.#known[connectionId]?.policy ?? {};
      throw error;
    }
  }
}
