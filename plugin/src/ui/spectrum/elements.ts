/**
 * JSX typing of the Spectrum built-in widgets UXP provides (`sp-*`). They are not React
 * components: React sets their attributes (write `class`, not `className`; leave false boolean
 * attributes out) and never sees their events, which the wrappers in this folder attach by ref.
 */
import type { DetailedHTMLProps, HTMLAttributes } from 'react';

type Base = DetailedHTMLProps<HTMLAttributes<HTMLElement>, HTMLElement>;

export interface SpProps extends Base {
  class?: string;
  variant?: string;
  quiet?: true;
  disabled?: true;
  size?: string;
  slot?: string;
}

export interface SpTextfieldProps extends SpProps {
  type?: string;
  placeholder?: string;
  value?: string;
  valid?: true;
  invalid?: true;
  readonly?: true;
}

export interface SpDropdownProps extends SpProps {
  placeholder?: string;
}

export interface SpMenuItemProps extends SpProps {
  value?: string;
  selected?: true;
}

export interface SpCheckboxProps extends SpProps {
  checked?: true;
  indeterminate?: true;
}

export interface SpProgressbarProps extends SpProps {
  value?: number;
  max?: number;
  indeterminate?: true;
  'show-value'?: true;
}

declare module 'react' {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace JSX {
    interface IntrinsicElements {
      'sp-button': SpProps;
      'sp-action-button': SpProps;
      'sp-textfield': SpTextfieldProps;
      'sp-textarea': SpTextfieldProps;
      'sp-dropdown': SpDropdownProps;
      'sp-menu': SpProps;
      'sp-menu-item': SpMenuItemProps;
      'sp-checkbox': SpCheckboxProps;
      'sp-progressbar': SpProgressbarProps;
      'sp-divider': SpProps;
      'sp-heading': SpProps;
      'sp-body': SpProps;
      'sp-label': SpProps;
      'sp-detail': SpProps;
      'sp-link': SpProps & { href?: string };
      'sp-icon': SpProps & { name?: string };
    }
  }
}
