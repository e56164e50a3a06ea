/**
 * The studio workflow policy (extension `org.imagine.workflow-policy`, spec in
 * docs/extensions/workflow-policy.md): what a server asks of a file before it is pushed
 * (required metadata fields, allowed media types, a colour profile, a file name pattern).
 *
 * A library server publishes `<data>/workflow-policy.json` in its capabilities document (the
 * policy inline) and at `GET {api}/workflow-policy`; the agent fetches it per connection, keeps
 * the last one it saw (so an offline push is still checked), and refuses a push that breaks it
 * with ERR_POLICY_VIOLATION and the list of `issues`, before anything is queued.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';
import { WorkflowPolicy } from '../../shared/schemas/agent.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import type { CapabilitiesDocument } from '../../shared/schemas/discovery.ts';
import { checkSchema, describeIssues } from '../../shared/validate.ts';
import { pickTag, readGroupedTags } from '../metadata/exiftool.ts';
import type { MetadataProfile } from '../metadata/profile.ts';
import { readMetadata } from '../metadata/read.ts';

export const WORKFLOW_POLICY_EXTENSION = 'org.imagine.workflow-policy';
export const WORKFLOW_POLICY_VERSION = '1';
export const WORKFLOW_POLICY_FILE = 'workflow-policy.json';

export type PolicyRule = 'requiredFields' | 'allowedMediaTypes' | 'colourProfile' | 'filenamePattern';

export interface PolicyIssue {
  rule: PolicyRule;
  /** The metadata field, for `requiredFields`. */
  field?: string;
  message: string;
}

/** What a policy is checked against: facts about the file about to be pushed. */
export interface PolicyFacts {
  /** The file name the server will record. */
  filename: string;
  mediaType?: string;
  metadata: AssetMetadata;
  /** The embedded ICC profile's description, when there is one. */
  colourProfile?: string;
}

/** A policy from JSON, validated (schema, and a pattern that compiles). Throws ERR_VALIDATION. */
export function parseWorkflowPolicy(value: unknown, where = 'workflow policy'): WorkflowPolicy {
  const checked = checkSchema(WorkflowPolicy, value);
  if (!checked.ok) throw new ProtocolError('ERR_VALIDATION', `${where}: ${describeIssues(checked.issues)}`);
  const policy = checked.value;
  if (policy.filenamePattern !== undefined) {
    try {
      new RegExp(policy.filenamePattern);
    } catch (error) {
      throw new ProtocolError('ERR_VALIDATION', `${where}: filenamePattern is not a regular expression`, { cause: error });
    }
  }
  return policy;
}

/** `<data>/workflow-policy.json`, validated; undefined when there is none. Throws ERR_CONFIG_INVALID. */
export async function loadWorkflowPolicyFile(dataDir: string): Promise<{ policy: WorkflowPolicy; mtimeMs: number } | undefined> {
  const path = join(dataDir, WORKFLOW_POLICY_FILE);
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(path)).mtimeMs;
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ProtocolError('ERR_CONFIG_INVALID', `cannot read ${path}`, { cause: error });
  }
  try {
    return { policy: parseWorkflowPolicy(JSON.parse(text), path), mtimeMs };
  } catch (error) {
    throw new ProtocolError('ERR_CONFIG_INVALID', `${path} is not a valid workflow policy: ${(error as Error).message}`, { cause: error });
  }
}

/** The policy a capabilities document publishes; `{}` when the server has none. */
export function policyFromCapabilities(capabilities: CapabilitiesDocument): WorkflowPolicy {
  const extension = capabilities.extensions.find((e) => e.name === WORKFLOW_POLICY_EXTENSION);
  if (!extension) return {};
  return parseWorkflowPolicy((extension as { policy?: unknown }).policy ?? {}, `${WORKFLOW_POLICY_EXTENSION} of the server`);
}

const isEmpty = (value: unknown): boolean =>
  value === undefined ||
  value === null ||
  (typeof value === 'string' && value.trim() === '') ||
  (Array.isArray(value) && value.every(isEmpty)) ||
  (typeof value === 'object' && !Array.isArray(value) && Object.values(value as object).every(isEmpty));

/**
 * Every way `facts` break `policy` (empty when none).
 *
 * @example
 *   checkPolicy({ requiredFields: ['creator'] }, { filename: 'a.jpg', metadata: {} });
 *   // [{ rule: 'requiredFields', field: 'creator', message: 'metadata field "creator" is required' }]
 */
export function checkPolicy(policy: WorkflowPolicy, facts: PolicyFacts): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  for (const field of policy.requiredFields ?? []) {
    if (isEmpty((facts.metadata as Record<string, unknown>)[field])) {
      issues.push({ rule: 'requiredFields', field, message: `metadata field "${field}" is required` });
    }
  }
  const allowed = policy.allowedMediaTypes;
  if (allowed && allowed.length > 0) {
    const type = facts.mediaType?.toLowerCase();
    if (!type || !allowed.some((a) => a.toLowerCase() === type)) {
      issues.push({ rule: 'allowedMediaTypes', message: `${type ?? 'an unknown type'} is not one of ${allowed.join(', ')}` });
    }
  }
  if (policy.colourProfile) {
    const wanted = policy.colourProfile.trim().toLowerCase();
    const has = facts.colourProfile?.trim().toLowerCase();
    if (has !== wanted) {
      issues.push({
        rule: 'colourProfile',
        message: `the colour profile must be "${policy.colourProfile}" (the file has ${has ? `"${facts.colourProfile}"` : 'none'})`,
      });
    }
  }
  if (policy.filenamePattern !== undefined && !new RegExp(policy.filenamePattern).test(facts.filename)) {
    issues.push({ rule: 'filenamePattern', message: `the file name "${facts.filename}" does not match ${policy.filenamePattern}` });
  }
  return issues;
}

/** Reads from the file what a policy needs (metadata with the profile, media type, ICC description). */
export async function readPolicyFacts(path: string, filename: string, profile?: MetadataProfile): Promise<PolicyFacts> {
  const [read, icc] = await Promise.all([
    readMetadata(path, { profile }),
    readGroupedTags(path, ['-ICC_Profile:ProfileDescription']),
  ]);
  const description = pickTag(icc.tags, 'ICC_Profile:ProfileDescription');
  return {
    filename,
    mediaType: read.mimeType,
    metadata: read.metadata,
    colourProfile: typeof description === 'string' ? description : undefined,
  };
}

/** Throws ERR_POLICY_VIOLATION (with `issues`) when `facts` break `policy`. */
export function ensurePolicy(policy: WorkflowPolicy, facts: PolicyFacts): void {
  const issues = checkPolicy(policy, facts);
  if (issues.length === 0) return;
  throw new ProtocolError('ERR_POLICY_VIOLATION', `the push does not meet the studio's workflow policy: ${issues.map((i) => i.message).join('; ')}`, {
    extensions: { issues },
  });
}
