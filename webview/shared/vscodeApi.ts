// The webview side of VS Code's messaging and state, typed with the shared protocol.
interface VsCodeApi<State, Outgoing> {
  postMessage(message: Outgoing): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<State, Outgoing>(): VsCodeApi<State, Outgoing>;

export function vscodeApi<State, Outgoing>(): VsCodeApi<State, Outgoing> {
  return acquireVsCodeApi<State, Outgoing>();
}

/** Builds an element with attributes and children; text is always set as text, never HTML. */
export function element<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

export function customElement(tag: string, attributes: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}
