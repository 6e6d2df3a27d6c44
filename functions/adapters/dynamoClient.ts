import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { notifyCall } from './callObserver.js';
import { checkFault, checkLostReply, slowDown } from './faults.js';
import { record } from './metering.js';

/**
 * One DynamoDB document client per process. The endpoint comes from the SDK's own AWS_ENDPOINT_URL /
 * AWS_ENDPOINT_URL_DYNAMODB variables, so the same code targets the emulator, LocalStack or AWS.
 * A build-step middleware sees every call in wire form: the crash-test fault hook, request-unit
 * metering, and the call observer of the permission test.
 */
let client: DynamoDBDocumentClient | undefined;

export function dynamo(): DynamoDBDocumentClient {
  if (client) return client;
  const base = new DynamoDBClient({ maxAttempts: 5 });
  base.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      notifyCall(name, args.input);
      checkFault(name, 'before');
      await slowDown(name);
      const result = await next(args);
      record(name, args.input, result.output);
      checkFault(name, 'after');
      return result;
    },
    { step: 'build', name: 'sluiceFaultsAndMetering' },
  );
  // Inside the retry loop (deserialize runs per attempt): a reply lost after the call was applied.
  base.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      checkLostReply(context.commandName ?? 'unknown');
      return result;
    },
    { step: 'deserialize', name: 'sluiceLostReply' },
  );
  client = DynamoDBDocumentClient.from(base, { marshallOptions: { removeUndefinedValues: true } });
  return client;
}
