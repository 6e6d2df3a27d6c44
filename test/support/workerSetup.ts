import { inject } from 'vitest';
import { useLocalAws, useLocalQueues } from '../../local/environment.js';
import { useLocalStateMachines } from '../../local/stateMachines.js';

// Crash tests make handlers fail on purpose; their error logs would only bury the test report.
process.env.POWERTOOLS_LOG_LEVEL = process.env.SLUICE_TEST_LOG_LEVEL ?? 'SILENT';
useLocalAws(inject('awsEndpoints'), inject('tablePrefix'));
useLocalQueues(inject('queueUrls'));
useLocalStateMachines(inject('stateMachines'));
