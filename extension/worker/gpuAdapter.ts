// What GPU adapter WebGPU can find here, in words for the report. onnxruntime-node does not
// expose the adapter it opens, so on Linux this reads the Vulkan drivers (ICD manifests) that
// Dawn, WebGPU's implementation inside onnxruntime, chooses from: those named by the Vulkan
// loader's environment variables, else the system's. Which provider runs is decided by
// measurement (pairMeasurer), never by this name; the name explains the decision.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Vulkan drivers that draw with the CPU: correct, but slower than onnxruntime's own cpu provider. */
const SOFTWARE_DRIVERS: { pattern: RegExp; name: string }[] = [
  { pattern: /swiftshader/i, name: 'SwiftShader' },
  { pattern: /lvp|lavapipe/i, name: 'lavapipe (Mesa)' },
  { pattern: /llvmpipe/i, name: 'llvmpipe (Mesa)' },
];

const SYSTEM_ICD_FOLDERS = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

export interface GpuAdapterDescription {
  /** E.g. "Vulkan driver libvk_swiftshader.so (SwiftShader, a software renderer)". */
  text: string;
  /** True when every driver found renders in software. */
  software: boolean;
}

/** The Vulkan drivers WebGPU can use on Linux; null elsewhere (Direct3D 12 and Metal adapters are not listed). */
export function describeGpuAdapter(env: NodeJS.ProcessEnv = process.env, platform = os.platform()): GpuAdapterDescription | null {
  if (platform !== 'linux') return null;
  const named = (env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES)?.split(':').filter((file) => file.length > 0);
  const manifests = named ?? SYSTEM_ICD_FOLDERS.flatMap((folder) => jsonFilesIn(folder));
  const drivers = manifests.map((manifest) => driverOf(manifest)).filter((driver) => driver !== null);
  if (drivers.length === 0) return { text: named ? `no readable Vulkan driver manifest in ${named.join(', ')}` : 'no Vulkan driver installed', software: false };
  const text = drivers.map((driver) => (driver.software ? `${driver.library} (${driver.software}, a software renderer)` : driver.library)).join(', ');
  return {
    text: `Vulkan driver${drivers.length > 1 ? 's' : ''} ${text}${named ? ' (named by the environment)' : ''}`,
    software: drivers.every((driver) => driver.software !== undefined),
  };
}

function jsonFilesIn(folder: string): string[] {
  try {
    return fs
      .readdirSync(folder)
      .filter((name) => name.endsWith('.json'))
      .sort()
      .map((name) => path.join(folder, name));
  } catch {
    return [];
  }
}

function driverOf(manifest: string): { library: string; software?: string } | null {
  try {
    const library = path.basename((JSON.parse(fs.readFileSync(manifest, 'utf8')) as { ICD?: { library_path?: string } }).ICD?.library_path ?? '');
    if (!library) return null;
    const software = SOFTWARE_DRIVERS.find((entry) => entry.pattern.test(library) || entry.pattern.test(path.basename(manifest)));
    return { library, software: software?.name };
  } catch {
    return null;
  }
}
