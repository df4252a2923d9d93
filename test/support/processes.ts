export * from '../../harness/local-fleet.js';
