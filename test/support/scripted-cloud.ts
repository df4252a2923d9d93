export * from '../../harness/scripted-cloud.js';
