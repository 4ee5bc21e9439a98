import { type Child, h, uniqueId } from './dom.js';

/**
 * Forms generated from a provider's JSON Schema (GET /api/providers), so a third-party sidecar
 * gets a form without UI code. Handles objects, strings, numbers, booleans, enums, lists of
 * strings, lists of objects (repeatable rows) and unions of objects told apart by a constant
 * field (a processor `type`); anything else is a JSON text box.
 */
export type JsonSchema = {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  format?: string;
  writeOnly?: boolean;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  additionalProperties?: boolean | JsonSchema;
  $ref?: string;
  [keyword: string]: unknown;
};

export interface FormField {
  element: HTMLElement;
  /** The value to send, or undefined to leave the field out. Also (re)labels error slots with `path`. */
  read(path: string): unknown;
  /** Empties every secret input (after submit: no secret stays in the page). */
  clearSecrets(): void;
}

/** Field names whose values are credentials: rendered as password inputs and emptied after submit. */
export const secretFieldPattern = /(^|_|-)(secret|password|passphrase|private_?key|api_?key|token)s?$/i;

export function isSecretField(name: string, schema: JsonSchema): boolean {
  return schema.writeOnly === true || schema.format === 'password' || secretFieldPattern.test(name);
}

const humanize = (name: string) =>
  name
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/[_-]/g, ' ')
    .toLowerCase()
    .replace(/^./, (letter) => letter.toUpperCase());

function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((type) => type !== 'null');
  return schema.type;
}

function variants(schema: JsonSchema): JsonSchema[] | undefined {
  return schema.oneOf ?? schema.anyOf;
}

/** The constant property that tells the variants of a union of objects apart (`type`). */
function discriminator(options: JsonSchema[]): string | undefined {
  const first = options[0]?.properties;
  if (!first || !options.every((option) => typeOf(option) === 'object' || option.properties))
    return undefined;
  return Object.keys(first).find((key) =>
    options.every((option) => option.properties?.[key]?.const !== undefined),
  );
}

function errorSlot(): HTMLElement {
  return h('p', { class: 'field-error', role: 'alert', 'data-error-for': '' });
}

function setPath(slot: HTMLElement, path: string): void {
  slot.dataset['errorFor'] = path;
}

/** Label, control, hint, error: in that order so the grid puts the control beside its label. */
function fieldParts(
  label: string,
  required: boolean,
  description: string | undefined,
  id: string,
  control: HTMLElement,
  slot: HTMLElement,
): Child[] {
  return [
    h(
      'label',
      { for: id },
      label,
      required ? h('span', { class: 'required', 'aria-hidden': 'true' }, ' *') : null,
    ),
    control,
    description ? h('small', { class: 'hint', id: `${id}-hint` }, description) : null,
    slot,
  ];
}

interface BuildOptions {
  name: string;
  label?: string;
  required: boolean;
}

export function buildField(schema: JsonSchema, options: BuildOptions): FormField {
  const label = options.label ?? schema.title ?? humanize(options.name);
  const allVariants = variants(schema);
  const options_ = allVariants?.filter((option) => typeOf(option) !== 'null' && option.type !== 'null');
  if (options_ && options_.length === 1) {
    return buildField(
      {
        ...options_[0]!,
        description: schema.description ?? options_[0]!.description,
        default: schema.default,
      },
      options,
    );
  }
  if (options_) {
    const strings = options_.filter((option) => typeOf(option) === 'string' && option.enum === undefined);
    const stringList = options_.find(
      (option) => typeOf(option) === 'array' && typeOf(option.items ?? {}) === 'string',
    );
    if (stringList)
      return stringListField(
        { ...stringList, description: schema.description ?? stringList.description },
        options,
        label,
      );
    const key = discriminator(options_);
    if (key) return unionField(schema, options_, key, options, label);
    if (strings.length > 0 && strings.length === options_.length)
      return scalarField(strings[0]!, options, label);
  }
  const type = typeOf(schema);
  if (type === 'object' && schema.properties) return objectField(schema, options, label);
  if (type === 'array' && schema.items && typeOf(schema.items) === 'object') {
    return rowsField(schema, options, label);
  }
  if (type === 'array' && typeOf(schema.items ?? {}) === 'string')
    return stringListField(schema, options, label);
  if (type === 'object' && schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    return keyValueField(schema, options, label);
  }
  if (type === 'string' || type === 'number' || type === 'integer' || type === 'boolean' || schema.enum) {
    return scalarField(schema, options, label);
  }
  return jsonField(schema, options, label);
}

function scalarField(schema: JsonSchema, options: BuildOptions, label: string): FormField {
  const id = uniqueId(`field-${options.name}`);
  const slot = errorSlot();
  const type = typeOf(schema);
  const secret = type === 'string' && isSecretField(options.name, schema);
  let input: HTMLInputElement | HTMLSelectElement;
  if (schema.enum) {
    input = h(
      'select',
      { id, name: options.name },
      options.required ? null : h('option', { value: '' }, '(default)'),
      schema.enum.map((value) =>
        h('option', { value: String(value), selected: schema.default === value }, String(value)),
      ),
    );
  } else if (type === 'boolean') {
    input = h('input', { id, name: options.name, type: 'checkbox', checked: schema.default === true });
  } else {
    input = h('input', {
      id,
      name: options.name,
      type: secret ? 'password' : type === 'number' || type === 'integer' ? 'number' : 'text',
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder:
        schema.default !== undefined && typeof schema.default !== 'object'
          ? String(schema.default)
          : undefined,
      'aria-describedby': schema.description ? `${id}-hint` : undefined,
      'aria-required': options.required ? 'true' : undefined,
      'data-secret': secret ? 'true' : undefined,
    });
  }
  const wrapper = h(
    'div',
    { class: type === 'boolean' ? 'field field-checkbox' : 'field' },
    fieldParts(label, options.required, schema.description, id, input, slot),
  );
  return {
    element: wrapper,
    read(path) {
      setPath(slot, path);
      if (input instanceof HTMLInputElement && input.type === 'checkbox') {
        return input.checked === (schema.default === true) && !options.required ? undefined : input.checked;
      }
      const raw = input.value;
      if (raw === '') return undefined;
      if (type === 'number' || type === 'integer') {
        const number = Number(raw);
        return Number.isFinite(number) ? number : raw;
      }
      if (schema.enum && typeof schema.enum[0] === 'number') return Number(raw);
      return raw;
    },
    clearSecrets() {
      if (secret) input.value = '';
    },
  };
}

function stringListField(schema: JsonSchema, options: BuildOptions, label: string): FormField {
  const id = uniqueId(`field-${options.name}`);
  const slot = errorSlot();
  const input = h('input', {
    id,
    name: options.name,
    type: 'text',
    autocomplete: 'off',
    spellcheck: 'false',
    'aria-describedby': `${id}-hint`,
  });
  return {
    element: h(
      'div',
      { class: 'field' },
      fieldParts(
        label,
        options.required,
        `${schema.description ? `${schema.description} ` : ''}(comma-separated)`,
        id,
        input,
        slot,
      ),
    ),
    read(path) {
      setPath(slot, path);
      const items = input.value
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean);
      return items.length > 0 ? items : undefined;
    },
    clearSecrets() {},
  };
}

function objectField(schema: JsonSchema, _options: BuildOptions, label: string, legend = true): FormField {
  const slot = errorSlot();
  const required = new Set(schema.required ?? []);
  const children = Object.entries(schema.properties ?? {})
    .filter(([, property]) => property.const === undefined)
    .map(([name, property]) => ({
      name,
      field: buildField(property, { name, required: required.has(name) }),
    }));
  const element = h(
    'fieldset',
    { class: legend ? 'object' : 'object plain' },
    legend ? h('legend', {}, label) : null,
    schema.description && legend ? h('p', { class: 'hint' }, schema.description) : null,
    slot,
    children.map((child) => child.field.element),
  );
  return {
    element,
    read(path) {
      setPath(slot, path);
      const value: Record<string, unknown> = {};
      for (const child of children) {
        const childValue = child.field.read(path ? `${path}.${child.name}` : child.name);
        if (childValue !== undefined) value[child.name] = childValue;
      }
      return Object.keys(value).length > 0 ? value : undefined;
    },
    clearSecrets() {
      for (const child of children) child.field.clearSecrets();
    },
  };
}

function unionField(
  schema: JsonSchema,
  variantsList: JsonSchema[],
  key: string,
  options: BuildOptions,
  label: string,
): FormField {
  const id = uniqueId(`field-${options.name}-${key}`);
  const slot = errorSlot();
  const body = h('div', { class: 'union-body' });
  let current: { value: unknown; field: FormField | undefined } | undefined;
  const select = h(
    'select',
    { id, name: `${options.name}.${key}` },
    options.required ? null : h('option', { value: '' }, '(none)'),
    variantsList.map((variant, index) =>
      h('option', { value: String(index) }, String(variant.properties?.[key]?.const)),
    ),
  );
  const choose = () => {
    const variant = select.value === '' ? undefined : variantsList[Number(select.value)];
    if (!variant) {
      current = undefined;
      body.replaceChildren();
      return;
    }
    const rest = { ...variant, properties: { ...variant.properties } };
    delete rest.properties[key];
    const field =
      Object.keys(rest.properties).length > 0 ? objectField(rest, options, label, false) : undefined;
    current = { value: variant.properties?.[key]?.const, field };
    body.replaceChildren(...(field ? [field.element] : []));
  };
  select.addEventListener('change', choose);
  choose();
  return {
    element: h(
      'fieldset',
      { class: 'object union' },
      h('legend', {}, label),
      schema.description ? h('p', { class: 'hint' }, schema.description) : null,
      h('div', { class: 'field' }, h('label', { for: id }, `${label}: ${key}`), select),
      slot,
      body,
    ),
    read(path) {
      setPath(slot, path);
      if (!current) return undefined;
      const rest = (current.field?.read(path) as Record<string, unknown> | undefined) ?? {};
      return { [key]: current.value, ...rest };
    },
    clearSecrets() {
      current?.field?.clearSecrets();
    },
  };
}

function rowsField(schema: JsonSchema, options: BuildOptions, label: string): FormField {
  const slot = errorSlot();
  const itemSchema = schema.items!;
  const singular = label.replace(/s$/, '');
  const rows: { field: FormField; element: HTMLElement }[] = [];
  const list = h('div', { class: 'rows' });
  const addRow = () => {
    const field = objectField(itemSchema, { name: options.name, required: true }, singular, false);
    const row = {
      field,
      element: h('fieldset', { class: 'row' }),
    };
    const legend = h('legend', {}, `${singular} ${rows.length + 1}`);
    const remove = h('button', { type: 'button', class: 'secondary' }, `Remove ${singular.toLowerCase()}`);
    remove.addEventListener('click', () => {
      rows.splice(rows.indexOf(row), 1);
      row.element.remove();
      rows.forEach((each, index) => {
        const rowLegend = each.element.querySelector('legend');
        if (rowLegend) rowLegend.textContent = `${singular} ${index + 1}`;
      });
    });
    row.element.append(legend, field.element, remove);
    rows.push(row);
    list.append(row.element);
    row.element.querySelector<HTMLElement>('input, select')?.focus();
  };
  const add = h('button', { type: 'button', class: 'secondary' }, `+ Add ${singular.toLowerCase()}`);
  add.addEventListener('click', addRow);
  return {
    element: h(
      'fieldset',
      { class: 'object list' },
      h('legend', {}, label),
      schema.description ? h('p', { class: 'hint' }, schema.description) : null,
      slot,
      list,
      add,
    ),
    read(path) {
      setPath(slot, path);
      const values = rows.map((row, index) => row.field.read(`${path}.${index}`) ?? {});
      return values.length > 0 ? values : undefined;
    },
    clearSecrets() {
      for (const row of rows) row.field.clearSecrets();
    },
  };
}

function keyValueField(schema: JsonSchema, options: BuildOptions, label: string): FormField {
  const id = uniqueId(`field-${options.name}`);
  const slot = errorSlot();
  const input = h('textarea', {
    id,
    name: options.name,
    rows: 3,
    spellcheck: 'false',
    autocomplete: 'off',
    placeholder: 'NAME=value, one per line',
  });
  return {
    element: h(
      'div',
      { class: 'field' },
      fieldParts(label, options.required, schema.description, id, input, slot),
    ),
    read(path) {
      setPath(slot, path);
      return parseKeyValueLines(input.value);
    },
    clearSecrets() {},
  };
}

/** `NAME=value` lines into a record; undefined when empty. */
export function parseKeyValueLines(text: string): Record<string, string> | undefined {
  const entries = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const equals = line.indexOf('=');
      return equals < 0 ? [line, ''] : [line.slice(0, equals).trim(), line.slice(equals + 1)];
    });
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

function jsonField(schema: JsonSchema, options: BuildOptions, label: string): FormField {
  const id = uniqueId(`field-${options.name}`);
  const slot = errorSlot();
  const input = h('textarea', { id, name: options.name, rows: 3, spellcheck: 'false', autocomplete: 'off' });
  return {
    element: h(
      'div',
      { class: 'field' },
      fieldParts(label, options.required, `${schema.description ?? ''} (JSON)`.trim(), id, input, slot),
    ),
    read(path) {
      setPath(slot, path);
      if (input.value.trim() === '') return undefined;
      try {
        return JSON.parse(input.value);
      } catch {
        return input.value;
      }
    },
    clearSecrets() {},
  };
}

/** A sidecar's whole config form (its top-level object without a legend). */
export function buildConfigForm(schema: JsonSchema, name: string, label: string): FormField {
  if (typeOf(schema) === 'object' && schema.properties)
    return objectField(schema, { name, required: true }, label, false);
  return buildField(schema, { name, label, required: true });
}

/**
 * Puts each of the API's problems ("path: message", from `error.details.problems`) next to the
 * field whose path is the longest prefix of it; returns the problems no field took.
 */
export function showProblems(root: ParentNode, problems: string[]): string[] {
  for (const slot of root.querySelectorAll<HTMLElement>('[data-error-for]')) {
    slot.textContent = '';
    slot.closest('.field')?.classList.remove('invalid');
    slot.closest('.field')?.querySelector('input, select, textarea')?.removeAttribute('aria-invalid');
  }
  const slots = [...root.querySelectorAll<HTMLElement>('[data-error-for]')].filter(
    (slot) => slot.dataset['errorFor'],
  );
  const unplaced: string[] = [];
  for (const problem of problems) {
    const colon = problem.indexOf(': ');
    const path = colon < 0 ? '' : problem.slice(0, colon);
    const message = colon < 0 ? problem : problem.slice(colon + 2);
    const slot = slots
      .filter((candidate) => {
        const slotPath = candidate.dataset['errorFor']!;
        return path === slotPath || path.startsWith(`${slotPath}.`);
      })
      .sort((left, right) => right.dataset['errorFor']!.length - left.dataset['errorFor']!.length)[0];
    if (!slot) {
      unplaced.push(problem);
      continue;
    }
    const rest = path.slice(slot.dataset['errorFor']!.length).replace(/^\./, '');
    slot.textContent = [slot.textContent, rest ? `${rest}: ${message}` : message].filter(Boolean).join('; ');
    const field = slot.closest('.field');
    field?.classList.add('invalid');
    field?.querySelector('input, select, textarea')?.setAttribute('aria-invalid', 'true');
  }
  return unplaced;
}
