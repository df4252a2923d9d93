export * from '../../demo/wait-for.js';
