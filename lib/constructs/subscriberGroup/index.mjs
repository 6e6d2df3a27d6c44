/* global process, console, fetch, AbortSignal, URL, Buffer, setTimeout */
/**
 * CloudFormation custom resource behind LambdaSubscriber (lib/constructs/lambdaSubscriber.ts): creates or
 * updates a Sluice consumer group with Lambda delivery by calling the Sluice HTTP API
 * (PUT /v1/topics/{topic}/groups/{group}) signed with SigV4 (auth=iam), and on delete switches the group
 * back to pull delivery (the API has no group delete; the group's progress stays).
 *
 * Plain JavaScript on node: built-ins only (no bundling, no SDK), so the construct works in any CDK app.
 * It answers CloudFormation itself (the pre-signed ResponseURL), always, within its timeout.
 *
 * Resource properties: ApiUrl, Region, Topic, Group, Mode, Settings (the group's PUT body, JSON).
 */
import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Physical id of a create that failed: the Delete CloudFormation sends on rollback must not touch any group. */
export const CREATE_FAILED_PREFIX = 'sluice-group-create-failed:';
/** One API call's time limit (API Gateway's own integration limit is 30 s). */
const CALL_TIMEOUT_MS = 20_000;
/** Time kept back to answer CloudFormation. */
const RESPONSE_RESERVE_MS = 10_000;

const sha256Hex = (data) => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key, data) => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const encodeRfc3986 = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Signature Version 4 headers for an execute-api request without a query string (what API Gateway's IAM
 * authorization checks). `now` is a Date; `credentials` { accessKeyId, secretAccessKey, sessionToken? }.
 */
export function signRequest({ method, url, body, region, credentials, now = new Date(), service = 'execute-api' }) {
  const u = new URL(url);
  if (u.search) throw new Error('signRequest: query strings are not supported');
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const headers = { 'content-type': 'application/json', host: u.host, 'x-amz-date': amzDate };
  if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  // Every service but S3 signs the path with each segment encoded again (it is sent encoded once).
  const canonicalPath = u.pathname.split('/').map(encodeRfc3986).join('/') || '/';
  const canonicalRequest = [
    method,
    canonicalPath,
    '',
    ...names.map((n) => `${n}:${String(headers[n]).trim().replace(/\s+/g, ' ')}`),
    '',
    signedHeaders,
    sha256Hex(body ?? ''),
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, date), region), service), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

const credentialsFromEnv = () => ({
  accessKeyId: process.env.AWS_ACCESS_KEY_ID,
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  sessionToken: process.env.AWS_SESSION_TOKEN,
});

export const groupUrl = (apiUrl, topic, group) =>
  `${apiUrl.replace(/\/+$/, '')}/v1/topics/${encodeURIComponent(topic)}/groups/${encodeURIComponent(group)}`;

/** A refusal by the API (4xx but 429): retrying the same request cannot help. */
class Refused extends Error {
  constructor(status, text) {
    let detail = text.slice(0, 500);
    try {
      const error = JSON.parse(text).error;
      if (error?.code) detail = `${error.code}: ${error.message}`;
    } catch {
      // not JSON: keep the text
    }
    super(`Sluice answered ${status}: ${detail}`);
    this.status = status;
  }
}

/**
 * PUTs a group's settings, retrying throttles (429), server errors and network failures with backoff
 * until `deadline` (epoch ms). Resolves with the status; rejects with Refused on a 4xx, or the last error.
 * The reply body is never logged or returned (an HTTP push group's reply would hold its signing secret).
 */
export async function putGroup({ apiUrl, region, topic, group, settings, deadline, credentials = credentialsFromEnv(), fetchImpl = fetch }) {
  const url = groupUrl(apiUrl, topic, group);
  const body = JSON.stringify(settings);
  let lastError;
  for (let attempt = 0; ; attempt++) {
    const left = deadline - Date.now();
    if (left <= 0) throw lastError ?? new Error('no time left to call Sluice');
    try {
      const headers = signRequest({ method: 'PUT', url, body, region, credentials });
      const reply = await fetchImpl(url, { method: 'PUT', headers, body, redirect: 'error', signal: AbortSignal.timeout(Math.min(CALL_TIMEOUT_MS, left)) });
      const text = await reply.text();
      if (reply.status >= 200 && reply.status < 300) return reply.status;
      if (reply.status >= 400 && reply.status < 500 && reply.status !== 429) throw new Refused(reply.status, text);
      lastError = new Error(`Sluice answered ${reply.status} to PUT ${url}`);
    } catch (error) {
      if (error instanceof Refused) throw error;
      lastError = error;
    }
    const backoff = Math.min(8_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
    if (Date.now() + backoff >= deadline) throw lastError;
    await new Promise((resolve) => setTimeout(resolve, backoff));
  }
}

/** Sends the custom resource's outcome to CloudFormation's pre-signed S3 URL. */
function answer(event, outcome) {
  const body = JSON.stringify({
    Status: outcome.status,
    Reason: outcome.reason ?? 'OK',
    PhysicalResourceId: outcome.physicalResourceId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    NoEcho: false,
    Data: {},
  });
  const url = new URL(event.ResponseURL);
  // CloudFormation's URL is https; http is for tests.
  const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'PUT', headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', resolve);
      },
    );
    req.on('error', reject);
    req.setTimeout(CALL_TIMEOUT_MS, () => req.destroy(new Error('timed out answering CloudFormation')));
    req.end(body);
  });
}

const physicalIdOf = (p) => `${new URL(p.ApiUrl).host}/${p.Topic}/${p.Group}`;

/** What the handler does for one event: { status, reason?, physicalResourceId }. Exported for tests. */
export async function outcomeOf(event, { deadline = Date.now() + 60_000, put = putGroup } = {}) {
  const p = event.ResourceProperties;
  const target = { apiUrl: p.ApiUrl, region: p.Region, topic: p.Topic, group: p.Group, deadline };
  if (event.RequestType === 'Delete') {
    if (event.PhysicalResourceId.startsWith(CREATE_FAILED_PREFIX)) return { status: 'SUCCESS', physicalResourceId: event.PhysicalResourceId };
    try {
      // Stop invoking the function: the group goes back to pull delivery (no filter or transform), its progress kept.
      await put({ ...target, settings: { mode: p.Mode, delivery: { type: 'pull' } } });
      console.log(`group ${p.Topic}/${p.Group} switched to pull delivery`);
    } catch (error) {
      // A deletion must not get stuck (e.g. the Sluice stack is gone already); say what was left behind.
      // A 404 (the topic is gone) leaves nothing behind.
      console.log(`could not switch group ${p.Topic}/${p.Group} to pull delivery, left as it is: ${error instanceof Error ? error.message : String(error)}`);
      return { status: 'SUCCESS', reason: 'group left as it is (see the log)', physicalResourceId: event.PhysicalResourceId };
    }
    return { status: 'SUCCESS', physicalResourceId: event.PhysicalResourceId };
  }
  try {
    const status = await put({ ...target, settings: JSON.parse(p.Settings) });
    console.log(`group ${p.Topic}/${p.Group}: ${status === 201 ? 'created' : 'updated'}`);
    return { status: 'SUCCESS', physicalResourceId: physicalIdOf(p) };
  } catch (error) {
    const reason = `PUT group ${p.Topic}/${p.Group} failed: ${error instanceof Error ? error.message : String(error)}`;
    console.log(reason);
    return {
      status: 'FAILED',
      reason,
      // A failed update keeps its id (CloudFormation then rolls back with the old settings).
      physicalResourceId: event.RequestType === 'Create' ? `${CREATE_FAILED_PREFIX}${event.RequestId}` : event.PhysicalResourceId,
    };
  }
}

export async function handler(event, context) {
  const deadline = Date.now() + context.getRemainingTimeInMillis() - RESPONSE_RESERVE_MS;
  let outcome;
  try {
    outcome = await outcomeOf(event, { deadline });
  } catch (error) {
    outcome = {
      status: 'FAILED',
      reason: error instanceof Error ? error.message : String(error),
      physicalResourceId: event.PhysicalResourceId ?? `${CREATE_FAILED_PREFIX}${event.RequestId}`,
    };
  }
  await answer(event, outcome);
}
