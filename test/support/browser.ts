export * from '../../harness/browser.js';
