/** The PNG of an enrollment QR payload (the REST API's `qr.png` and the portal's register page). */
export async function qrPng(payload: string): Promise<Buffer> {
  const { default: QRCode } = await import('qrcode');
  return QRCode.toBuffer(payload, { type: 'png', errorCorrectionLevel: 'M', margin: 4, scale: 6 });
}
