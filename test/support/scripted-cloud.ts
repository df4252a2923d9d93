export * from '../../demo/scripted-cloud.js';
