/**
 * What a Sluice stack publishes for other CDK apps (the Lambda subscriber construct, lib/subscriber.ts):
 * SSM parameters under /sluice/<stack name>/, read at deploy time by the apps that use them, so that
 * an app needs only the Sluice stack's name. The same values are stack outputs too.
 */
export const SLUICE_PARAMETER_PREFIX = '/sluice';

export interface SluiceParameterNames {
  /** The API's base URL (https://<api id>.execute-api.<region>.amazonaws.com). */
  readonly apiUrl: string;
  /** The ARN of the push worker's role: the principal that invokes Lambda subscribers. */
  readonly pushWorkerRoleArn: string;
}

export function sluiceParameterNames(stackName: string): SluiceParameterNames {
  return {
    apiUrl: `${SLUICE_PARAMETER_PREFIX}/${stackName}/api-url`,
    pushWorkerRoleArn: `${SLUICE_PARAMETER_PREFIX}/${stackName}/push-worker-role-arn`,
  };
}
