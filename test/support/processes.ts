export * from '../../demo/local-fleet.js';
