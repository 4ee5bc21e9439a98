import * as z from 'zod';

export const greetingConfigSchema = z
  .object({
    /** What the service answers. Not a secret: it is shown to the agent. */
    greeting: z
      .string({ error: 'must be a string, for example "Hello from keyward"' })
      .min(1, { error: 'must not be empty' })
      .max(200, { error: 'must be at most 200 characters' }),
    port: z
      .number({ error: 'must be a port number' })
      .int({ error: 'must be a whole number' })
      .min(1024, { error: 'must be between 1024 and 65535 (the container runs without privileges)' })
      .max(65535, { error: 'must be between 1024 and 65535' })
      .default(4600),
    /** Any image with `node` on its PATH. */
    image: z.string().min(1, { error: 'must not be empty' }).default('node:20-slim'),
  })
  .strict();

export type GreetingConfig = z.output<typeof greetingConfigSchema>;
