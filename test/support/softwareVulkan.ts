// A Vulkan driver for the WebGPU tests on machines without a GPU: SwiftShader, the software
// Vulkan driver Debian's chromium ships (package chromium-common). Mesa's lavapipe is not used:
// WebGPU (Dawn) refuses it. The worker gets the driver through the Vulkan loader's environment;
// where the system has no Vulkan loader (libvulkan.so.1), chromium's own copy beside the driver
// is put on the worker's library path.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ICD_NAME = 'vk_swiftshader_icd.json';
/** Where Debian, Ubuntu and Fedora install chromium's files. */
const CHROMIUM_FOLDERS = ['/usr/lib/chromium', '/usr/lib/chromium-browser', '/usr/lib64/chromium-browser'];

export type SoftwareVulkan = { found: true; icd: string; env: Record<string, string> } | { found: false; reason: string };

let cached: SoftwareVulkan | undefined;

/** The SwiftShader driver and the worker environment that selects it; or why there is none. */
export function softwareVulkan(): SoftwareVulkan {
  cached ??= locate();
  return cached;
}

function locate(): SoftwareVulkan {
  if (os.platform() !== 'linux') return { found: false, reason: 'the SwiftShader tests run on Linux only' };
  const icd = [
    process.env.PLASTICITY_LENS_VK_ICD,
    ...CHROMIUM_FOLDERS.map((folder) => path.join(folder, ICD_NAME)),
    ...packageFiles('chromium-common'),
    ...packageFiles('chromium'),
  ]
    .filter((file): file is string => !!file && file.endsWith(ICD_NAME))
    .find((file) => fs.existsSync(file));
  if (!icd) return { found: false, reason: `no SwiftShader Vulkan driver (${ICD_NAME}) found; install Debian's chromium (apt-get install chromium) to run them` };
  const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'plasticity-lens-xdg-'));
  fs.chmodSync(runtimeDir, 0o700);
  const env: Record<string, string> = { VK_ICD_FILENAMES: icd, VK_DRIVER_FILES: icd, XDG_RUNTIME_DIR: runtimeDir };
  const folder = path.dirname(icd);
  if (!systemHasVulkanLoader() && fs.existsSync(path.join(folder, 'libvulkan.so.1'))) {
    env.LD_LIBRARY_PATH = [folder, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  }
  return { found: true, icd, env };
}

function packageFiles(name: string): string[] {
  const listed = spawnSync('dpkg', ['-L', name], { encoding: 'utf8' });
  return listed.status === 0 ? listed.stdout.split('\n') : [];
}

function systemHasVulkanLoader(): boolean {
  const cache = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  return cache.status === 0 && /libvulkan\.so\.1\b/.test(cache.stdout);
}
