// Accessible modal questions (<dialog>: focus is trapped and Escape cancels).

import { h } from './ui';

/** Ask for a line of text; null when cancelled. `choices` are offered as suggestions. */
export function ask(title: string, label: string, value = '', choices: string[] = []): Promise<string | null> {
  const input = h('input', { id: 'dialog-input', value, autocomplete: 'off', list: choices.length ? 'dialog-choices' : null, required: true });
  const list = h('datalist', { id: 'dialog-choices' }, ...choices.map((c) => h('option', { value: c })));
  return modal(title, [h('label', { for: 'dialog-input' }, label), input, list], 'OK', () => input.value);
}

export function confirmAction(text: string): Promise<boolean> {
  return modal('Are you sure?', [h('p', {}, text)], 'Delete', () => true).then((v) => v === true);
}

function modal<T>(title: string, body: Node[], okLabel: string, value: () => T): Promise<T | null> {
  return new Promise((resolve) => {
    const dialog = h('dialog', { 'aria-labelledby': 'dialog-title' });
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'dialog-title' }, title), ...body,
      h('div', { class: 'toolbar' },
        h('button', { value: 'cancel', type: 'submit', formnovalidate: true }, 'Cancel'),
        h('button', { value: 'ok', type: 'submit', class: 'primary' }, okLabel)));
    dialog.append(form);
    document.body.append(dialog);
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok' ? value() : null);
      dialog.remove();
    });
    dialog.showModal();
  });
}
