import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { dynamoStores } from '../adapters/stores.js';
import { loadConfig } from '../config.js';
import { sweepDelayed } from '../domain/delay/sweep.js';

const logger = new Logger({ serviceName: 'sluice-delay' });
/** CloudWatch metric (Embedded Metric Format): namespace Sluice, dimension service=sluice-delay; the stack alarms on OverdueDelayed. */
export const metrics = new Metrics({ namespace: 'Sluice', serviceName: 'sluice-delay' });

const DEADLINE_MARGIN_MS = 5000;

/** Scheduled (EventBridge Scheduler, every minute): queues delayed messages coming due, and overdue ones again. */
export const handler = middy(async (_event: unknown, context: Context) => {
  const summary = await sweepDelayed(dynamoStores(loadConfig()), Date.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS);
  metrics.addMetric('OverdueDelayed', MetricUnit.Count, summary.overdue);
  metrics.addMetric('DelayedQueued', MetricUnit.Count, summary.queued);
  if (summary.overdue > 0) logger.warn('overdue delayed messages queued again', { ...summary });
  if (!summary.complete) logger.warn('delay sweep ran out of time; the next sweep continues at its cursor', { ...summary });
  return summary;
})
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
