export * from '../../harness/wait-for.js';
