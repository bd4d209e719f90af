// Chart.js set up the way every panel draws: the controllers they use registered once, the value
// axis (linear or log), lines with 95% bands, the linear/log switch, and PNG export on the
// editor's background.
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import {
  CategoryScale,
  Chart,
  ChartDataset,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  PointStyle,
  ScatterController,
  Tooltip,
} from 'chart.js';
import { ThemeColors, themeColors, withAlpha } from './theme';
import { customElement } from './vscodeApi';

Chart.register(LineController, LineElement, PointElement, ScatterController, LinearScale, LogarithmicScale, CategoryScale, Filler, Legend, Tooltip);

export { Chart };
export type ValueScale = 'linear' | 'log';

/** Marks the band datasets so legends and tooltips leave them out. */
export const BAND_LABEL = '95%';

/** The value axis, linear or logarithmic as the user chose. */
export function axisOptions(colors: ThemeColors, title: string, logarithmic: boolean) {
  return {
    type: logarithmic ? ('logarithmic' as const) : ('linear' as const),
    title: { display: true, text: title, color: colors.foreground },
    ticks: { color: colors.foreground },
    grid: { color: colors.grid },
  };
}

export interface BandLine {
  label: string;
  color: string;
  mean: number[];
  low: number[];
  high: number[];
  /** Dash pattern and point shape: what tells lines apart where colour cannot. */
  dash?: number[];
  pointStyle?: PointStyle;
}

/**
 * A line with its 95% band: the upper edge filled down to the lower edge (the next dataset),
 * both hidden from legend and tooltip (filter on BAND_LABEL). Log scales get values clamped above 0.
 */
export function bandDatasets(line: BandLine, colors: ThemeColors, scale: ValueScale): ChartDataset<'line'>[] {
  const positive = (value: number) => (scale === 'log' ? Math.max(value, 1e-6) : value);
  return [
    {
      label: `${line.label} ${BAND_LABEL} upper`,
      data: line.high.map(positive),
      borderWidth: 0,
      pointRadius: 0,
      backgroundColor: withAlpha(line.color, colors.highContrast ? 0.35 : 0.18),
      fill: '+1',
    },
    { label: `${line.label} ${BAND_LABEL} lower`, data: line.low.map(positive), borderWidth: 0, pointRadius: 0, fill: false },
    {
      label: line.label,
      data: line.mean.map(positive),
      borderColor: line.color,
      backgroundColor: line.color,
      borderWidth: colors.highContrast ? 3 : 2,
      borderDash: line.dash ?? [],
      pointStyle: line.pointStyle ?? 'circle',
      pointRadius: 3,
      fill: false,
    },
  ];
}

/** A chart of values across depth (one x tick per block) with 95% bands: the report's and the comparison's. */
export function lineChartAcrossDepth(
  canvas: HTMLCanvasElement,
  labels: string[],
  datasets: ChartDataset<'line'>[],
  colors: ThemeColors,
  scale: ValueScale,
  valueTitle: string,
): Chart {
  return new Chart(canvas, {
    type: 'line',
    data: { labels, datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      plugins: legendWithoutBands(colors),
      scales: {
        x: { type: 'category', title: { display: true, text: 'block', color: colors.foreground }, ticks: { color: colors.foreground }, grid: { color: colors.grid } },
        y: axisOptions(colors, valueTitle, scale === 'log'),
      },
    },
  });
}

/** Legend and tooltip options that leave the bands out. */
export function legendWithoutBands(colors: ThemeColors) {
  return {
    legend: { labels: { color: colors.foreground, usePointStyle: true, filter: (item: { text: string }) => !item.text.includes(BAND_LABEL) } },
    tooltip: { filter: (item: { dataset: { label?: string } }) => !item.dataset.label?.includes(BAND_LABEL) },
  };
}

/** The Linear / Log radio group; `onChange` gets the new scale. */
export function scaleSwitch(current: ValueScale, onChange: (scale: ValueScale) => void): HTMLElement {
  const group = customElement(
    'vscode-radio-group',
    { id: 'scale', 'aria-label': 'Vertical scale' },
    customElement('vscode-radio', { name: 'scale', value: 'linear', label: 'Linear', ...(current === 'linear' ? { checked: '' } : {}) }, 'Linear'),
    customElement('vscode-radio', { name: 'scale', value: 'log', label: 'Log', ...(current === 'log' ? { checked: '' } : {}) }, 'Log'),
  );
  group.addEventListener('change', (event) => {
    const value = (event.target as HTMLInputElement).value;
    if (value === 'linear' || value === 'log') onChange(value);
  });
  return group;
}

/** The canvas as a PNG data URL drawn on the editor's background, so it reads the same outside VS Code; null when absent. */
export function canvasPng(canvasId: string): string | null {
  const canvas = document.getElementById(canvasId) as HTMLCanvasElement | null;
  if (!canvas) return null;
  const copy = document.createElement('canvas');
  copy.width = canvas.width;
  copy.height = canvas.height;
  const context = copy.getContext('2d')!;
  context.fillStyle = themeColors().background;
  context.fillRect(0, 0, copy.width, copy.height);
  context.drawImage(canvas, 0, 0);
  return copy.toDataURL('image/png');
}

/** A secondary toolbar button. */
export function toolbarButton(id: string, label: string, action: () => void): HTMLElement {
  const node = customElement('vscode-button', { id, secondary: '' }, label);
  node.addEventListener('click', action);
  return node;
}
