// Colours from the active VS Code theme (light, dark, high contrast), read from the --vscode-*
// variables VS Code sets on the webview, and a hook to redraw when the theme changes.
export interface ThemeColors {
  foreground: string;
  muted: string;
  grid: string;
  background: string;
  /** One colour per component, in LN1, MHA, LN2, FC1, FC2 order. */
  series: string[];
  highContrast: boolean;
}

function variable(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

export function themeColors(): ThemeColors {
  const highContrast = document.body.classList.contains('vscode-high-contrast') || document.body.classList.contains('vscode-high-contrast-light');
  return {
    foreground: variable('--vscode-editor-foreground', '#333'),
    muted: variable('--vscode-descriptionForeground', '#777'),
    grid: variable('--vscode-charts-lines', 'rgba(128,128,128,0.35)'),
    background: variable('--vscode-editor-background', '#fff'),
    series: [
      variable('--vscode-charts-yellow', '#cca700'),
      variable('--vscode-charts-red', '#f14c4c'),
      variable('--vscode-charts-green', '#89d185'),
      variable('--vscode-charts-blue', '#3794ff'),
      variable('--vscode-charts-purple', '#b180d7'),
    ],
    highContrast,
  };
}

/** Calls `redraw` whenever VS Code switches theme (it changes the body's classes). */
export function onThemeChange(redraw: () => void): void {
  let last = document.body.className;
  new MutationObserver(() => {
    if (document.body.className === last) return;
    last = document.body.className;
    redraw();
  }).observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });
}

/** `color` with the given opacity (handles #rgb, #rrggbb, rgb() and rgba()). */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})([0-9a-f]{2})?$/i.exec(color);
  if (hex) {
    const digits =
      hex[1].length === 3
        ? hex[1]
            .split('')
            .map((digit) => digit + digit)
            .join('')
        : hex[1];
    const [r, g, b] = [0, 2, 4].map((start) => parseInt(digits.slice(start, start + 2), 16));
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  const rgb = /^rgba?\(([^)]+)\)$/i.exec(color);
  if (rgb) {
    const [r, g, b] = rgb[1].split(',').map((part) => part.trim());
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  return color;
}
