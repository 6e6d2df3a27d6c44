import { App } from 'aws-cdk-lib';
import { subscriberApp } from '../lib/subscriber-stack.js';

subscriberApp(new App());
