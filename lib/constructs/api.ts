import { CfnOutput, Duration } from 'aws-cdk-lib';
import { CfnStage, HttpApi, HttpMethod, type IHttpRouteAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Construct } from 'constructs';
import { API_KEY_AUTHORIZER, ROUTES } from '../routes.js';
import type { TableId } from '../tables.js';
import { BrokerFunction } from './brokerFunction.js';

export interface BrokerApiProps {
  readonly auth: 'iam' | 'apiKey';
  readonly tables: Record<TableId, TableV2>;
  readonly environment: Record<string, string>;
  readonly logRetention: RetentionDays;
}

/** How long API Gateway caches an authorizer's answer per key: a revoked key stops working within this. */
const AUTHORIZER_CACHE = Duration.seconds(60);

/** The HTTP API: one route and one function per entry of lib/routes.ts, every route authenticated. */
export class BrokerApi extends Construct {
  readonly httpApi: HttpApi;
  readonly functions: Record<string, NodejsFunction> = {};

  constructor(scope: Construct, id: string, props: BrokerApiProps) {
    super(scope, id);
    const make = (spec: (typeof ROUTES)[number] | typeof API_KEY_AUTHORIZER) =>
      new BrokerFunction(this, spec.handler, {
        spec,
        tables: props.tables,
        environment: props.environment,
        logRetention: props.logRetention,
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

    for (const route of ROUTES) {
      const fn = make(route);
      this.functions[route.handler] = fn;
      this.httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${route.handler}Integration`, fn),
        authorizer,
      });
    }

    // Access logs of the default stage: who called what, with which status.
    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: props.logRetention });
    const stage = this.httpApi.defaultStage?.node.defaultChild as CfnStage;
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
