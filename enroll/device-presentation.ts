import { type FactoryIdentity, readFactoryIdentity } from '../identity/factory-identity.js';
import { readHardwareFacts } from '../identity/hardware-serial.js';

/** What a device presents when it enrolls: its serial and model, and its factory identity if it has one. */
export interface DevicePresentation {
  serialNumber: string | null;
  model: string | null;
  factory: FactoryIdentity | null;
}

export interface PresentationSettings {
  serialNumber: string;
  model: string;
  factoryKeyFile: string;
  factoryCertFile: string;
}

/**
 * The serial is the flag's, else the device settings', else the one the factory certificate
 * names, else the hardware's; the model is the settings', else the hardware's.
 */
export async function presentDevice(
  s: PresentationSettings,
  serialFlag?: string,
): Promise<DevicePresentation> {
  const factory = await readFactoryIdentity(s.factoryKeyFile, s.factoryCertFile);
  const hardware = await readHardwareFacts();
  return {
    serialNumber: serialFlag || s.serialNumber || factory?.serialNumber || hardware.serialNumber,
    model: s.model || hardware.model,
    factory,
  };
}

export const NO_SERIAL_MESSAGE =
  'no serial number to enroll with: the hardware reports none and there is no factory certificate naming one';
export const NO_SERIAL_HINT =
  'pass --serial SERIAL, or set serialNumber in the device settings (/etc/posagent/agent.json or POSAGENT_SERIAL_NUMBER), as pre-registered in the cloud';
