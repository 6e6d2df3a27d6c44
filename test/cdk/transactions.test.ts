/**
 * Transactions in the stack (issue 10): the Transactions table, the TransactionTimeout and CheckBack queues
 * with their consumers, the check-back state machine (the definition lib/checkBack.ts declares, the one the
 * local runtime runs), its role, log group and alarms, and who may start it or answer its task tokens.
 */
import { describe, expect, it } from 'vitest';
import { checkBackDefinitionJson } from '../../lib/checkBack.js';
import { QUEUES } from '../../lib/queues.js';
import { CHECK_BACK_WORKER_FUNCTION, TRANSACTION_TIMEOUT_FUNCTION, timeoutSecondsOf } from '../../lib/routes.js';
import { TABLES } from '../../lib/tables.js';
import { resourcesOf, synthStack } from './synth.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const t = synthStack().template();
const alarmed = synthStack({ alarmEmail: 'ops@example.com' }).template();
const functions = resourcesOf(t, 'AWS::Lambda::Function');
const handlerOf = (fn: { Properties: any }) => fn.Properties.Environment.Variables.SLUICE_HANDLER as string;
const functionIdOf = (handler: string) => Object.entries(functions).find(([, fn]) => handlerOf(fn) === handler)![0];
const roleOf = (handler: string) => functions[functionIdOf(handler)]!.Properties.Role['Fn::GetAtt'][0] as string;
const envOf = () => Object.values(functions)[0]!.Properties.Environment.Variables;
const queueId = (id: string) => envOf()[QUEUES.find((s) => s.id === id)!.envVar].Ref as string;
const tableId = (id: string) => envOf()[TABLES.find((s) => s.id === id)!.envVar].Ref as string;
const machines = resourcesOf(t, 'AWS::StepFunctions::StateMachine');
const [machineId, machine] = Object.entries(machines)[0]!;

function statements(): { roles: string[]; statement: any }[] {
  return Object.values(resourcesOf(t, 'AWS::IAM::Policy')).flatMap((p) =>
    (p.Properties.PolicyDocument.Statement as any[]).map((statement) => ({ roles: (p.Properties.Roles as any[]).map((r) => r.Ref as string), statement })),
  );
}
const actionsOf = (s: any): string[] => [s.Action].flat();
const rolesAllowed = (action: string) => statements().filter((s) => actionsOf(s.statement).includes(action)).flatMap((s) => s.roles);

/** The deployed definition with CloudFormation's substitutions made, as the local runtime gets it. */
function deployedDefinition(): any {
  const parts = machine.Properties.DefinitionString['Fn::Join'][1] as any[];
  const text = parts
    .map((p) => {
      if (typeof p === 'string') return p;
      if (p.Ref === 'AWS::Partition') return 'aws';
      if (p.Ref === queueId('CheckBack')) return 'QUEUE_URL';
      throw new Error(`unexpected token ${JSON.stringify(p)}`);
    })
    .join('');
  return JSON.parse(text);
}

describe('transactions in the stack', () => {
  it('has one Standard state machine, traced, logging to its own log group, with a time limit', () => {
    expect(Object.keys(machines)).toHaveLength(1);
    expect(machine.Properties.StateMachineType).toBe('STANDARD');
    expect(machine.Properties.TracingConfiguration).toEqual({ Enabled: true });
    expect(machine.Properties.LoggingConfiguration.Level).toBe('ALL');
    expect(machine.Properties.LoggingConfiguration.IncludeExecutionData).toBe(false);
    expect(deployedDefinition().TimeoutSeconds).toBe(7 * 24 * 3600);
  });

  it('deploys exactly the definition the local runtime runs on the emulator (lib/checkBack.ts)', () => {
    const local = JSON.parse(checkBackDefinitionJson({ arn: 'arn:aws:sqs:us-east-1:123456789012:q', url: 'QUEUE_URL' }));
    const { TimeoutSeconds, Comment, ...deployed } = deployedDefinition();
    expect(TimeoutSeconds).toBeGreaterThan(0);
    expect(Comment).toContain('check-back');
    expect(deployed).toEqual(local);
    // Only integrations the emulators execute: sqs sendMessage with a task token.
    const resources = Object.values(local.States as Record<string, any>).flatMap((s) => (s.Resource ? [s.Resource] : []));
    expect(new Set(resources)).toEqual(new Set(['arn:aws:states:::sqs:sendMessage.waitForTaskToken']));
  });

  it("the state machine's role may send to the CheckBack queue and nothing else of Sluice's", () => {
    const role = machine.Properties.RoleArn['Fn::GetAtt'][0] as string;
    const own = statements().filter((s) => s.roles.includes(role));
    const sqs = own.filter((s) => actionsOf(s.statement).some((a) => a.startsWith('sqs:')));
    expect(sqs.flatMap((s) => actionsOf(s.statement))).toEqual(['sqs:SendMessage']);
    expect(sqs[0]!.statement.Resource).toEqual({ 'Fn::GetAtt': [queueId('CheckBack'), 'Arn'] });
    expect(own.some((s) => actionsOf(s.statement).some((a) => a.startsWith('dynamodb:') || a.startsWith('lambda:')))).toBe(false);
  });

  it('only the timeout consumer starts executions, only the check-back worker answers task tokens, both on this state machine only', () => {
    expect(rolesAllowed('states:StartExecution')).toEqual([roleOf(TRANSACTION_TIMEOUT_FUNCTION.handler)]);
    expect(rolesAllowed('states:SendTaskSuccess')).toEqual([roleOf(CHECK_BACK_WORKER_FUNCTION.handler)]);
    for (const s of statements().filter((x) => actionsOf(x.statement).some((a) => a.startsWith('states:Send') || a === 'states:StartExecution'))) {
      expect(s.statement.Resource).toEqual({ Ref: machineId });
    }
    expect(envOf().CHECK_BACK_STATE_MACHINE_ARN).toEqual({ Ref: machineId });
  });

  it('feeds the TransactionTimeout and CheckBack queues to their consumers, with visibility above their timeouts', () => {
    const mappings = Object.values(resourcesOf(t, 'AWS::Lambda::EventSourceMapping'));
    for (const [queue, fn] of [
      ['TransactionTimeout', TRANSACTION_TIMEOUT_FUNCTION],
      ['CheckBack', CHECK_BACK_WORKER_FUNCTION],
    ] as const) {
      const mapping = mappings.find((m) => m.Properties.FunctionName.Ref === functionIdOf(fn.handler))!;
      expect(mapping.Properties.EventSourceArn).toEqual({ 'Fn::GetAtt': [queueId(queue), 'Arn'] });
      expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      const spec = QUEUES.find((q) => q.id === queue)!;
      expect(spec.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(timeoutSecondsOf(fn));
      expect(functions[functionIdOf(fn.handler)]!.Properties.Timeout).toBe(timeoutSecondsOf(fn));
    }
  });

  it('keeps transactions in a table of their own with TTL, written only by the transaction functions', () => {
    const table = resourcesOf(t, 'AWS::DynamoDB::GlobalTable')[tableId('Transactions')]!;
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'exp', Enabled: true });
    const writers = statements()
      .filter((s) => actionsOf(s.statement).some((a) => a === 'dynamodb:PutItem' || a === 'dynamodb:UpdateItem'))
      .filter((s) => JSON.stringify(s.statement.Resource).includes(tableId('Transactions')))
      .flatMap((s) => s.roles);
    const allowed = ['prepareTransaction', 'commitTransaction', 'rollbackTransaction', TRANSACTION_TIMEOUT_FUNCTION.handler, CHECK_BACK_WORKER_FUNCTION.handler].map(roleOf);
    expect(new Set(writers)).toEqual(new Set(allowed));
  });

  it('alarms when a check-back execution fails, times out or is aborted, and outputs the worker role for check-back Lambdas', () => {
    const alarms = Object.values(resourcesOf(alarmed, 'AWS::CloudWatch::Alarm')).filter((a) => a.Properties.Namespace === 'AWS/States');
    expect(alarms.map((a) => a.Properties.MetricName).sort()).toEqual(['ExecutionsAborted', 'ExecutionsFailed', 'ExecutionsTimedOut']);
    for (const a of alarms) {
      expect(a.Properties.Threshold).toBe(1);
      expect(a.Properties.AlarmActions).toHaveLength(1);
    }
    const outputs = t.toJSON().Outputs as Record<string, any>;
    expect(outputs.CheckBackWorkerRoleArn.Value).toEqual({ 'Fn::GetAtt': [roleOf(CHECK_BACK_WORKER_FUNCTION.handler), 'Arn'] });
  });
});
