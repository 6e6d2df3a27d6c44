import { inject } from 'vitest';
import { useLocalAws } from '../../local/environment.js';

useLocalAws(inject('awsEndpoint'), inject('tablePrefix'));
