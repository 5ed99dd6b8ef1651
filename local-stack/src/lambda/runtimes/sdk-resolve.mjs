// ES modules ignore NODE_PATH; Lambda's Node.js runtimes still let a handler import the
// AWS SDK they bundle. This hook retries a bare specifier that was not found from each
// NODE_PATH folder, in order, so `import ... from '@aws-sdk/client-dynamodb'` resolves as
// `require` does. Relative and absolute specifiers are never redirected.
import { pathToFileURL } from 'node:url';

const roots = (process.env.NODE_PATH || '')
  .split(':')
  .filter(Boolean)
  .map((dir) => pathToFileURL(dir.endsWith('/') ? dir : `${dir}/`).href);

const isBare = (s) => !s.startsWith('.') && !s.startsWith('/') && !/^[a-zA-Z][a-zA-Z+.-]*:/.test(s);

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier)) throw error;
    for (const parentURL of roots) {
      try {
        return await next(specifier, { ...context, parentURL });
      } catch {
        // try the next folder
      }
    }
    throw error;
  }
}
