// apply(plan): idempotent, and on any failure everything it created is taken back.
import {
  type DeploymentPlanV2,
  type InstanceDetailV2,
  KeywardError,
  type OperationOptionsV2,
  redact,
  registerSecret,
} from '@keyward/core';
import { checkImages, createNetworkHelper, deployContainer } from './container-deployment.js';
import { noCreatedResources, removeCreatedResources, sweepInstance } from './instance-cleanup.js';
import { startInstance } from './instance-lifecycle.js';
import { type InstanceRecord, localLabelKeys, planDigest, storePlan } from './instance-record.js';
import { findAgent, getInstance, instanceContainers } from './instance-state.js';
import { newGeneration, type OperationContext } from './operation-context.js';
import { createEmitter, failedStep, runStep, StepError } from './progress-steps.js';
import { rollbackIncompleteError, runtimeAnswers } from './runtime-loss.js';
import { egressNetworkName, internalNetworkName } from './runtime-names.js';
import { startOrder } from './start-order.js';
import { localTargetOptionsSchema } from './target-options.js';

export async function applyPlan(
  context: OperationContext,
  plan: DeploymentPlanV2,
  options: OperationOptionsV2,
): Promise<InstanceDetailV2> {
  const { providerId, helperImage } = context;
  const { docker } = context.runtime;
  const emit = createEmitter(context.settings, options.onProgress, options.signal);
  const name = plan.instance.name;
  if (plan.instance.target !== providerId) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId,
      message: `The plan targets "${plan.instance.target}", but this provider is "${providerId}"; compose the plan for target "${providerId}".`,
    });
  }
  if (plan.specificationVersion !== 'v2') {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId,
      message: `The plan is specification version "${String(plan.specificationVersion)}"; compose it with composePlanV2.`,
    });
  }
  const targetOptions = localTargetOptionsSchema.safeParse(plan.targetOptions ?? {});
  if (!targetOptions.success) {
    throw new KeywardError({
      code: 'INVALID_INSTANCE_SPEC',
      providerId,
      message: `Invalid targetOptions for target "${providerId}": ${targetOptions.error.issues.map((issue) => `${issue.path.join('.') || 'targetOptions'}: ${issue.message}`).join('; ')}`,
    });
  }
  for (const secret of plan.secrets) registerSecret(secret.value);
  const stored = storePlan(plan);
  const secretValues = new Map(plan.secrets.map((secret) => [secret.name, secret.value]));
  const digest = planDigest(stored, secretValues, helperImage);

  const existing = await instanceContainers(context, name);
  if (existing.length > 0) {
    const agent = findAgent(existing);
    const sameDigest = existing.every((summary) => summary.Labels[localLabelKeys.planDigest] === digest);
    const helpers = plan.networkMode === 'proxy-only' ? 2 : 1;
    if (agent && sameDigest && existing.length === plan.containers.length + helpers) {
      if (existing.every((summary) => summary.State === 'running')) {
        emit('apply', 'info', `Instance "${name}" already matches the plan; nothing changed.`);
      } else {
        emit('apply', 'info', `Instance "${name}" matches the plan but is not running; starting it.`);
        await startInstance(context, name, options);
      }
      return getInstance(context, name);
    }
    if (agent) {
      throw new KeywardError({
        code: 'INSTANCE_EXISTS',
        providerId,
        message: `Instance "${name}" already exists with a different plan; delete it first, or change its credentials with rotateSecrets.`,
      });
    }
    emit('cleanup', 'info', `Removing leftovers of an earlier failed apply of "${name}".`);
    await sweepInstance(context, name, false);
  }

  const generation = newGeneration(context.settings);
  const created = noCreatedResources();
  const record: InstanceRecord = { version: 2, plan: stored, generation, helperImage };
  try {
    const images = await checkImages(context, emit, [
      ...new Set([helperImage, ...plan.containers.map((container) => container.image)]),
    ]);
    if (plan.networkMode === 'proxy-only') {
      const internal = internalNetworkName(name);
      await runStep(
        emit,
        'network.create:internal',
        `Creating internal network ${internal} (no route out)`,
        async () => {
          await docker.createNetwork({
            Name: internal,
            Internal: true,
            Labels: { ...plan.labels },
            CheckDuplicate: true,
          });
          created.networks.push(internal);
        },
      );
    }
    const egress = egressNetworkName(name);
    await runStep(emit, 'network.create:egress', `Creating egress network ${egress}`, async () => {
      await docker.createNetwork({ Name: egress, Labels: { ...plan.labels }, CheckDuplicate: true });
      created.networks.push(egress);
    });
    await createNetworkHelper(context, emit, stored, digest, generation, created, images);
    const deployment = { stored, secretValues, digest, generation, images, created };
    if (!plan.containers.some((container) => container.role === 'agent')) {
      throw new StepError('plan', new Error('the plan has no agent container'));
    }
    // Each container after those its `startAfter` names; the agent, which carries the record, last.
    for (const container of startOrder(plan.containers)) {
      await deployContainer(context, emit, {
        ...deployment,
        container,
        ...(container.role === 'agent' ? { record } : {}),
      });
    }
  } catch (error) {
    const { step, original } = failedStep(error, 'apply');
    emit('rollback', 'started', `Step ${step} failed; removing everything created for "${name}"`);
    let swept = true;
    try {
      await removeCreatedResources(docker, created);
      // Volumes this apply created are gone with `created`; a kept data volume stays.
      await sweepInstance(context, name, false);
    } catch {
      swept = false;
    }
    if (!swept || !(await runtimeAnswers(docker))) {
      emit(
        'rollback',
        'failed',
        `The container runtime stopped answering; what was created for "${name}" is still there`,
      );
      throw rollbackIncompleteError({
        providerId,
        operation: `Applying instance "${name}"`,
        step,
        cause: original,
        left: `so what was created for "${name}" could not all be removed yet: once the runtime answers again, delete what is left (\`keyward rm ${name}\`; a keyward server does it by itself).`,
      });
    }
    emit('rollback', 'succeeded', `Removed everything created for "${name}"`);
    throw new KeywardError({
      code: KeywardError.isInstance(original) ? original.code : 'DEPLOY_FAILED',
      providerId,
      message: redact(
        `Applying instance "${name}" failed at step "${step}": ${(original as Error).message}. Everything created for it was removed.`,
      ),
      details: { step },
      cause: original,
    });
  }
  emit('apply', 'succeeded', `Instance "${name}" is running`);
  return getInstance(context, name);
}
