// Run as a separate process by instance-lock.test.ts: takes the lock, says so, holds
// it for the given time, then releases it.
import { acquireInstanceLock } from '../../src/instance-lock.js';

const [directory, instance, holdMs] = process.argv.slice(2);
const release = await acquireInstanceLock(instance as string, 'test-holder', {
  directory: directory as string,
});
process.stdout.write('locked\n');
await new Promise((resolve) => setTimeout(resolve, Number(holdMs)));
await release();
process.stdout.write('released\n');
