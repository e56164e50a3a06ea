/**
 * Browser stand-ins for the Spectrum widgets UXP builds in (`sp-button`, `sp-textfield`,
 * `sp-dropdown`, `sp-checkbox`, `sp-progressbar`...), so the same panel runs in the preview.
 * Registered only outside UXP. They behave like the UXP widgets as far as the panel uses them:
 * the same attributes, the same properties (`value`, `checked`, `selectedIndex`), the same
 * events (`click`, `input`, `change`) dispatched from the widget itself. They draw in the light
 * DOM (styled by panel.css), so no inline `<style>` is needed under the preview's CSP.
 */

const TAG_ROLES: Record<string, string> = { 'sp-button': 'button', 'sp-action-button': 'button', 'sp-link': 'link' };

export function registerSpectrumStandins(registry: CustomElementRegistry | undefined = globalThis.customElements): void {
  if (!registry || registry.get('sp-button')) return;
  for (const tag of ['sp-button', 'sp-action-button', 'sp-link']) registry.define(tag, buttonClass(TAG_ROLES[tag] ?? 'button'));
  registry.define('sp-textfield', fieldClass('input'));
  registry.define('sp-textarea', fieldClass('textarea'));
  registry.define('sp-checkbox', CheckboxStandin);
  registry.define('sp-dropdown', DropdownStandin);
  registry.define('sp-progressbar', ProgressbarStandin);
  for (const tag of ['sp-menu', 'sp-menu-item', 'sp-divider', 'sp-heading', 'sp-body', 'sp-label', 'sp-detail', 'sp-icon']) {
    registry.define(tag, class extends HTMLElement {});
  }
}

function buttonClass(role: string) {
  return class ButtonStandin extends HTMLElement {
    static observedAttributes = ['disabled'];
    #wired = false;
    connectedCallback() {
      this.setAttribute('role', role);
      this.#sync();
      if (this.#wired) return;
      this.#wired = true;
      // Registered before any listener the panel attaches, so a disabled widget stays silent.
      this.addEventListener('click', (event) => {
        if (this.hasAttribute('disabled')) event.stopImmediatePropagation();
      }, true);
      this.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          this.click();
        }
      });
    }
    attributeChangedCallback() {
      this.#sync();
    }
    #sync() {
      const disabled = this.hasAttribute('disabled');
      this.setAttribute('tabindex', disabled ? '-1' : '0');
      this.setAttribute('aria-disabled', String(disabled));
    }
  };
}

function fieldClass(kind: 'input' | 'textarea') {
  return class FieldStandin extends HTMLElement {
    static observedAttributes = ['placeholder', 'disabled', 'type', 'aria-label'];
    readonly #input: HTMLInputElement | HTMLTextAreaElement;
    constructor() {
      super();
      this.#input = document.createElement(kind);
      for (const type of ['input', 'change'] as const) {
        this.#input.addEventListener(type, (event) => {
          event.stopPropagation();
          this.dispatchEvent(new Event(type, { bubbles: true }));
        });
      }
    }
    connectedCallback() {
      if (this.#input.parentNode !== this) this.appendChild(this.#input);
      this.#sync();
    }
    attributeChangedCallback() {
      this.#sync();
    }
    get value(): string {
      return this.#input.value;
    }
    set value(value: string) {
      this.#input.value = value;
    }
    override focus() {
      this.#input.focus();
    }
    #sync() {
      const input = this.#input;
      input.placeholder = this.getAttribute('placeholder') ?? '';
      input.disabled = this.hasAttribute('disabled');
      const label = this.getAttribute('aria-label');
      if (label) input.setAttribute('aria-label', label);
      if (input instanceof HTMLInputElement) {
        const type = this.getAttribute('type') ?? 'text';
        input.type = type === 'search' ? 'search' : type === 'password' ? 'password' : 'text';
      }
    }
  };
}

class CheckboxStandin extends HTMLElement {
  static observedAttributes = ['checked', 'disabled'];
  #wired = false;
  connectedCallback() {
    this.setAttribute('role', 'checkbox');
    this.#sync();
    if (this.#wired) return;
    this.#wired = true;
    const toggle = () => {
      if (this.hasAttribute('disabled')) return;
      this.checked = !this.checked;
      this.dispatchEvent(new Event('change', { bubbles: true }));
    };
    this.addEventListener('click', toggle);
    this.addEventListener('keydown', (event) => {
      if (event.key === ' ') {
        event.preventDefault();
        toggle();
      }
    });
  }
  attributeChangedCallback() {
    this.#sync();
  }
  get checked(): boolean {
    return this.hasAttribute('checked');
  }
  set checked(value: boolean) {
    this.toggleAttribute('checked', value);
  }
  #sync() {
    this.setAttribute('aria-checked', String(this.checked));
    this.setAttribute('tabindex', this.hasAttribute('disabled') ? '-1' : '0');
  }
}

/** A native `<select>` built from the `sp-menu-item` children, rebuilt when they change. */
class DropdownStandin extends HTMLElement {
  static observedAttributes = ['disabled'];
  readonly #select = document.createElement('select');
  // Changes inside the <select> are its own rebuilds: only the widget's items count.
  readonly #observer = new MutationObserver((records) => {
    if (records.some((record) => !this.#select.contains(record.target))) this.#rebuild();
  });
  constructor() {
    super();
    this.#select.addEventListener('change', (event) => {
      event.stopPropagation();
      this.dispatchEvent(new Event('change', { bubbles: true }));
    });
  }
  connectedCallback() {
    if (this.#select.parentNode !== this) this.appendChild(this.#select);
    this.#observer.observe(this, { subtree: true, childList: true, attributes: true, characterData: true, attributeFilter: ['selected', 'value'] });
    this.#rebuild();
  }
  disconnectedCallback() {
    this.#observer.disconnect();
  }
  attributeChangedCallback() {
    this.#select.disabled = this.hasAttribute('disabled');
  }
  get selectedIndex(): number {
    return this.#select.selectedIndex;
  }
  get value(): string {
    return this.#select.value;
  }
  #items(): Element[] {
    return [...this.querySelectorAll('sp-menu-item')];
  }
  #rebuild() {
    const items = this.#items();
    const select = this.#select;
    const label = this.getAttribute('aria-label');
    if (label) select.setAttribute('aria-label', label);
    select.disabled = this.hasAttribute('disabled');
    select.replaceChildren(
      ...items.map((item, index) => {
        const option = document.createElement('option');
        option.value = item.getAttribute('value') ?? String(index);
        option.textContent = item.textContent ?? '';
        return option;
      }),
    );
    const selected = items.findIndex((item) => item.hasAttribute('selected'));
    select.selectedIndex = selected;
  }
}

class ProgressbarStandin extends HTMLElement {
  static observedAttributes = ['value', 'max', 'indeterminate'];
  readonly #track = document.createElement('div');
  readonly #fill = document.createElement('div');
  readonly #text = document.createElement('span');
  constructor() {
    super();
    this.#track.className = 'sp-progress-track';
    this.#fill.className = 'sp-progress-fill';
    this.#text.className = 'sp-progress-value';
    this.#track.appendChild(this.#fill);
  }
  connectedCallback() {
    if (this.#track.parentNode !== this) this.append(this.#text, this.#track);
    this.#sync();
  }
  attributeChangedCallback() {
    this.#sync();
  }
  #sync() {
    const max = Number(this.getAttribute('max') ?? 100) || 100;
    const value = Math.max(0, Math.min(max, Number(this.getAttribute('value') ?? 0) || 0));
    const indeterminate = this.hasAttribute('indeterminate');
    const percent = Math.round((value / max) * 100);
    this.#fill.style.width = indeterminate ? '30%' : `${percent}%`;
    this.#text.textContent = indeterminate || !this.hasAttribute('show-value') ? '' : `${percent}%`;
  }
}
