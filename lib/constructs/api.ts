import { CfnOutput, Duration } from 'aws-cdk-lib';
import { CfnStage, HttpApi, HttpMethod, type IHttpRouteAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { QueueId } from '../queues.js';
import { API_KEY_AUTHORIZER, ROUTES, type FunctionSpec, type RouteSpec } from '../routes.js';
import type { LimitsConfig } from '../stackConfig.js';
import type { TableId } from '../tables.js';
import { BrokerFunction } from './brokerFunction.js';

export interface BrokerApiProps {
  readonly auth: 'iam' | 'apiKey';
  readonly tables: Record<TableId, TableV2>;
  readonly queues: Record<QueueId, IQueue>;
  readonly environment: Record<string, string>;
  readonly logRetention: RetentionDays;
  readonly stateMachine: IStateMachine;
  /** Reserved concurrency and throttling (lib/stackConfig.ts); lib/routes.ts says which option applies to which function. */
  readonly limits: LimitsConfig;
}

/** How long API Gateway caches an authorizer's answer per key: a revoked key stops working within this. */
const AUTHORIZER_CACHE = Duration.seconds(60);

/** The HTTP API: one route and one function per entry of lib/routes.ts, every route authenticated. */
export class BrokerApi extends Construct {
  readonly httpApi: HttpApi;
  readonly functions: Record<string, NodejsFunction> = {};

  constructor(scope: Construct, id: string, props: BrokerApiProps) {
    super(scope, id);
    const make = (spec: FunctionSpec) =>
      new BrokerFunction(this, spec.handler, {
        spec,
        tables: props.tables,
        queues: props.queues,
        environment: props.environment,
        logRetention: props.logRetention,
        stateMachine: props.stateMachine,
        ...(spec.reservedConcurrencyOption ? { reservedConcurrency: props.limits[spec.reservedConcurrencyOption] } : {}),
      }).fn;

    let authorizer: IHttpRouteAuthorizer;
    if (props.auth === 'apiKey') {
      const authorizerFn = make(API_KEY_AUTHORIZER);
      this.functions[API_KEY_AUTHORIZER.handler] = authorizerFn;
      authorizer = new HttpLambdaAuthorizer('ApiKeyAuthorizer', authorizerFn, {
        responseTypes: [HttpLambdaResponseType.SIMPLE],
        identitySource: ['$request.header.x-api-key'],
        resultsCacheTtl: AUTHORIZER_CACHE,
      });
    } else {
      authorizer = new HttpIamAuthorizer();
    }

    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'Sluice message broker API (v1)',
      defaultAuthorizer: authorizer,
      createDefaultStage: true,
    });

    // Throttling: every route of the stage at apiRateLimit / apiBurstLimit, a route with its own options
    // (pull) tighter. Over the limits API Gateway answers 429 {"message":"Too Many Requests"} itself.
    // RouteSettings is untyped JSON in CloudFormation (CfnStage: `any`), so CDK does not capitalize its keys.
    const routeSettings: Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }> = {};
    const throttledRoutes: Construct[] = [];
    for (const route of ROUTES as readonly RouteSpec[]) {
      const fn = make(route);
      this.functions[route.handler] = fn;
      const created = this.httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${route.handler}Integration`, fn),
        authorizer,
      });
      if (route.routeThrottleOptions) {
        routeSettings[`${route.method} ${route.path}`] = {
          ThrottlingRateLimit: props.limits[route.routeThrottleOptions.rate],
          ThrottlingBurstLimit: props.limits[route.routeThrottleOptions.burst],
        };
        throttledRoutes.push(...created);
      }
    }

    const stage = this.httpApi.defaultStage?.node.defaultChild as CfnStage;
    stage.defaultRouteSettings = {
      throttlingRateLimit: props.limits.apiRateLimit,
      throttlingBurstLimit: props.limits.apiBurstLimit,
    };
    stage.routeSettings = routeSettings;
    // A stage's RouteSettings may only name routes that exist already ("Unable to find Route by key").
    for (const route of throttledRoutes) stage.node.addDependency(route);

    // Access logs of the default stage: who called what, with which status.
    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: props.logRetention });
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({
        requestId: '$context.requestId',
        ip: '$context.identity.sourceIp',
        caller: '$context.identity.caller',
        routeKey: '$context.routeKey',
        status: '$context.status',
        latencyMs: '$context.responseLatency',
        integrationError: '$context.integrationErrorMessage',
      }),
    };

    new CfnOutput(scope, 'ApiUrl', { value: this.httpApi.apiEndpoint, description: 'Base URL of the Sluice API' });
  }
}
