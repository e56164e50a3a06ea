/** Catches a screen's rendering failure: the panel shows what broke and a way back, never a blank panel. */
import { Component, type ReactNode } from 'react';
import { Button } from './spectrum/Button.tsx';

interface State {
  error: unknown;
}

export class ErrorBoundary extends Component<{ children: ReactNode; onReset?: () => void; resetKey?: unknown; resetLabel?: string }, State> {
  override state: State = { error: undefined };

  static getDerivedStateFromError(error: unknown): State {
    return { error };
  }

  override componentDidUpdate(previous: { resetKey?: unknown }) {
    if (this.state.error !== undefined && previous.resetKey !== this.props.resetKey) this.setState({ error: undefined });
  }

  override componentDidCatch(error: unknown) {
    console.error('Imagine panel: a screen failed', error);
  }

  override render() {
    if (this.state.error === undefined) return this.props.children;
    return (
      <div className="message message-error" role="alert" data-testid="screen-crash">
        <div className="message-title">This screen failed</div>
        <div className="message-detail">{this.state.error instanceof Error ? this.state.error.message : String(this.state.error)}</div>
        <Button
          onClick={() => {
            this.setState({ error: undefined });
            this.props.onReset?.();
          }}
        >
          {this.props.resetLabel ?? 'Back to search'}
        </Button>
      </div>
    );
  }
}
